"""Record step for runs that train nothing: the data gate's attempt is kept in MLflow all the same.

When the data gate refuses a snapshot (or passes it without drift under `--only-on-drift`) no
training run exists to carry the evidence. The attempt then goes to a run of its own in the
model's experiment, one per run key (tag `sluice.gate_run` = data, the run key and the input
identity), under `evidence/<attempt>/` like every gate attempt, so `sluice evidence list`
shows refused data next to trained models.
"""

from __future__ import annotations

from typing import Any

from gates.evidence.history import record_attempt
from ml.components.artifacts import evidence_json
from ml.components.markers import step
from ml.registry.client import connect, experiment_id
from ml.registry.pipeline_runs import DATA_BLOCKED, NO_OP, mark_pipeline_run
from sluice import tags


def _run_for_key(client: Any, experiment: str, model_name: str, run_key: str, identity: dict) -> str:
    """The run already holding this run key's attempts, else a new, finished data-gate run."""
    if run_key:
        found = client.search_runs(
            [experiment],
            filter_string=f"tags.`{tags.RUN_KEY}` = '{run_key}'",
            max_results=1,
            order_by=["attributes.start_time ASC"],
        )
        if found:
            return found[0].info.run_id
    run_tags = {
        tags.RUN_KEY: run_key,
        tags.MODEL_NAME: model_name,
        tags.GATE_RUN: "data",
        **tags.identity_tags(identity),
    }
    run = client.create_run(experiment, run_name=f"{model_name}-data-gate", tags=run_tags)
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def record_data_gate(
    *,
    tracking_uri: str,
    artifact_root: str,
    model_name: str,
    run_key: str,
    evidence_dir: str,
    identity: dict[str, str],
    pipeline_run_id: str = "",
) -> str:
    """Keep a data-gate attempt that led to no training; returns the MLflow run holding it."""
    with step("record-data-gate") as report:
        mlflow = connect(tracking_uri)
        client = mlflow.MlflowClient()
        experiment = experiment_id(mlflow, model_name, artifact_root)
        run_id = _run_for_key(client, experiment, model_name, run_key, identity)
        attempt = record_attempt(client, run_id, evidence_json(evidence_dir), pipeline_run_id=pipeline_run_id)
        outcome = NO_OP if attempt.verdict == "passed" else DATA_BLOCKED
        mark_pipeline_run(client.set_tag, (run_id,), pipeline_run_id, outcome)
        report.update(run_id=run_id, attempt=attempt.attempt, verdict=attempt.verdict)
    return run_id
