"""A study in MLflow: one parent run, one child run per trial, written safely from trial threads.

Optuna runs trials in a thread pool, and MLflow's active-run stack is thread-local: a nested
`mlflow.start_run()` inside a worker thread silently becomes a top-level run. So every run here is
created with `MlflowClient.create_run` and the parent named explicitly in the `mlflow.parentRunId`
tag, which is what the MLflow UI nests by. Writes go through one lock: a local SQLite store is a
single-writer database, and two trial threads logging at once would otherwise race for it.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

from sluice import tags

PARENT_TAG = "mlflow.parentRunId"  # MLflow's own tag (mlflow.utils.mlflow_tags.MLFLOW_PARENT_RUN_ID)
RUN_NAME_TAG = "mlflow.runName"


def experiment_name(model: str) -> str:
    return f"{model}-tuning"


@dataclass
class StudyRuns:
    """The MLflow side of one study; `parent_id` is stored in the study so a resumed run reuses it."""

    client: Any
    experiment_id: str
    parent_id: str
    lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def open(
        cls, tracking_uri: str, artifact_root: str, model: str, study: str, parent_id: str | None
    ) -> StudyRuns:
        from ml.registry.client import client, connect, experiment_id

        mlflow = connect(tracking_uri)
        exp = experiment_id(mlflow, experiment_name(model), artifact_root)
        mlflow_client = client(tracking_uri)
        if parent_id and _exists(mlflow_client, parent_id, exp):
            mlflow_client.update_run(parent_id, status="RUNNING")
        else:
            run = mlflow_client.create_run(
                exp,
                tags={
                    RUN_NAME_TAG: study,
                    tags.MODEL_NAME: model,
                    tags.TUNING_STUDY: study,
                },
            )
            parent_id = run.info.run_id
        return cls(mlflow_client, exp, parent_id)

    def start_trial(self, study: str, number: int, params: dict[str, Any], attrs: dict[str, Any]) -> str:
        run_tags = {
            PARENT_TAG: self.parent_id,
            RUN_NAME_TAG: f"{study}-trial-{number}",
            tags.TUNING_STUDY: study,
            tags.TUNING_TRIAL: str(number),
            **{tags.PREFIX + "tuning." + k: str(v) for k, v in attrs.items()},
        }
        with self.lock:
            run = self.client.create_run(self.experiment_id, tags=run_tags)
            self.client.log_batch(run.info.run_id, params=_params(params))
        return run.info.run_id

    def metric(self, run_id: str, name: str, value: float, step: int = 0) -> None:
        with self.lock:
            self.client.log_metric(run_id, name, value, step=step)

    def tag(self, run_id: str, key: str, value: str) -> None:
        with self.lock:
            self.client.set_tag(run_id, key, value)

    def end(self, run_id: str, status: str) -> None:
        """FINISHED, FAILED or KILLED (a trial a killed `sluice tune` left running)."""
        with self.lock:
            self.client.set_terminated(run_id, status=status)

    def finish_parent(self, summary: dict[str, Any], best_params: dict[str, Any] | None, status: str) -> None:
        with self.lock:
            for key, value in summary.items():
                if isinstance(value, int | float) and not isinstance(value, bool):
                    self.client.log_metric(self.parent_id, key, float(value))
            if best_params:
                self.client.set_tag(
                    self.parent_id, tags.TUNING_BEST_PARAMS, json.dumps(best_params, sort_keys=True)
                )
            self.client.set_terminated(self.parent_id, status=status)

    def children(self) -> list[Any]:
        filter_string = f"tags.`{PARENT_TAG}` = '{self.parent_id}'"
        return self.client.search_runs([self.experiment_id], filter_string=filter_string, max_results=10_000)


def _params(params: dict[str, Any]):
    from mlflow.entities import Param

    return [Param(k, str(v)) for k, v in sorted(params.items())]


def _exists(client: Any, run_id: str, experiment_id: str) -> bool:
    try:
        run = client.get_run(run_id)
    except Exception:  # MLflow raises its own error types for a missing run
        return False
    return run.info.experiment_id == experiment_id
