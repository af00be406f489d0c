"""Register step: a gated run becomes a model version with alias `challenger`, or its rejection is kept.

The same run key (data, contract, code, parameters) always maps to the same run, and a run
registers at most one version: a retry or an unchanged re-run returns that version instead of
creating another. Every model-gate attempt, passing or failing, is kept on the run under
`evidence/<attempt>/` (`gates.evidence.history`); the version's evidence tags describe the attempt
that registered it, and the run's describe its latest attempt without contradiction.
"""

from __future__ import annotations

import json
from typing import Any

from gates.evidence.history import Attempt, record_attempt, tag_run_verdict, verdict_tags
from ml.components.artifacts import evidence_json
from ml.components.markers import step
from ml.registry.client import connect
from ml.registry.pipeline_runs import REJECTED, REUSED, mark_pipeline_run
from sluice import tags
from sluice.environment import environment_tags

CHALLENGER = "challenger"


def _versions_of_run(client: Any, model_name: str, run_id: str) -> list:
    try:
        return list(client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'"))
    except Exception as exc:  # no registered model yet
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise


def _reuse(client: Any, mv: Any, model_name: str, pipeline_run_id: str) -> str:
    """Finish a version a partial earlier attempt created, and mark this pipeline run as reusing it."""
    if mv.tags.get(tags.REGISTRATION_COMPLETE) != "true":
        client.set_registered_model_alias(model_name, CHALLENGER, mv.version)
        client.set_model_version_tag(model_name, mv.version, tags.REGISTRATION_COMPLETE, "true")
    mark_pipeline_run(client.set_model_version_tag, (model_name, mv.version), pipeline_run_id, REUSED)
    return str(mv.version)


def version_tags(
    *, run_key: str, identity: dict, params: dict, pipeline_run_id: str, best: dict, holdout: dict,
    attempt: Attempt,
) -> dict[str, str]:
    return {
        tags.RUN_KEY: run_key,
        **tags.identity_tags(identity),
        tags.PARAMS: json.dumps(params, sort_keys=True),
        tags.PIPELINE_RUN_ID: pipeline_run_id,
        tags.MODEL_TYPE: best["model_type"],
        **verdict_tags(attempt),
        **{tags.metric_tag(k): repr(float(holdout[k])) for k in ("accuracy", "f1", "roc_auc")},
        **environment_tags(),  # the lock and trainer image this step runs in, when known
    }


def register_challenger(
    *,
    tracking_uri: str,
    model_name: str,
    run_id: str,
    run_key: str,
    evidence_dir: str,
    pipeline_run_id: str,
    best: dict,
    holdout_metrics: dict,
    identity: dict[str, str],
    split_params: dict,
) -> tuple[str, bool]:
    """Create (or reuse) the version; returns (version, reused)."""
    with step("register") as report:
        mlflow = connect(tracking_uri)
        client = mlflow.MlflowClient()
        attempt = record_attempt(client, run_id, evidence_json(evidence_dir), pipeline_run_id=pipeline_run_id)
        tag_run_verdict(client, run_id, attempt)
        report["attempt"] = attempt.attempt
        for mv in _versions_of_run(client, model_name, run_id):
            if mv.tags.get(tags.RUN_KEY) == run_key:
                version = _reuse(client, mv, model_name, pipeline_run_id)
                report.update(version=version, reused=True)
                return version, True
        params = {"candidate": best["name"], "model_type": best["model_type"], "params": best["params"]}
        version_tag_values = version_tags(
            run_key=run_key,
            identity=identity,
            params={**params, **split_params},
            pipeline_run_id=pipeline_run_id,
            best=best,
            holdout=holdout_metrics,
            attempt=attempt,
        )
        mv = mlflow.register_model(f"runs:/{run_id}/model", model_name, tags=version_tag_values)
        client.set_registered_model_alias(model_name, CHALLENGER, mv.version)
        client.set_model_version_tag(model_name, mv.version, tags.REGISTRATION_COMPLETE, "true")
        report.update(version=str(mv.version), reused=False)
    return str(mv.version), False


def record_rejection(*, tracking_uri: str, run_id: str, evidence_dir: str, pipeline_run_id: str = "") -> None:
    """A candidate the model gate refused keeps its evidence on its run; no version is created.

    The attempt is kept under the run's `evidence/<attempt>/` beside any earlier ones, the run's
    evidence tags name it with its reason, and the run is marked with the pipeline run, so `sluice
    submit --wait` can say why a finished pipeline run registered nothing.
    """
    with step("record-rejection") as report:
        client = connect(tracking_uri).MlflowClient()
        attempt = record_attempt(client, run_id, evidence_json(evidence_dir), pipeline_run_id=pipeline_run_id)
        tag_run_verdict(client, run_id, attempt)
        mark_pipeline_run(client.set_tag, (run_id,), pipeline_run_id, REJECTED)
        report.update(run_id=run_id, attempt=attempt.attempt)
