"""What a finished KFP pipeline run did in the registry: `sluice submit --wait`.

The KFP API says whether a run finished and how; only MLflow knows whether it registered a
version, because a run that ends SUCCEEDED may still have stopped at a gate. The pipeline marks
what each run did (see `ml.registry.pipeline_runs`):

* a version it created carries `sluice.pipeline_run_id` = the run's id (KFP substitutes
  `dsl.PIPELINE_JOB_ID_PLACEHOLDER`, `{{$.pipeline_job_uuid}}`, with the run id that
  `create_run_from_pipeline_package` returned; KFP backend >= 2.4, kubeflow/pipelines#11599);
* a version it found already registered for the same run key carries
  `sluice.pipeline_run.<id>` = `reused`;
* a candidate the model gate refused has `sluice.pipeline_run.<id>` = `rejected` on its MLflow
  run, with the gate's reason in `sluice.evidence_reason`;
* a run whose data gate trained nothing has `sluice.pipeline_run.<id>` = `data-blocked` or
  `no-op` on the run holding that data-gate attempt, whose index entry carries the reason.

A run that left none of these stopped before its gates could record anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ml.registry.pipeline_runs import DATA_BLOCKED, NO_OP, REJECTED, REUSED, pipeline_run_tag
from sluice import tags
from sluice.errors import SluiceError

DEFAULT_TIMEOUT_S = 3600.0
POLL_INTERVAL_S = 10
UNRESOLVED_RUN_ID = "{{$.pipeline_job_uuid}}"  # what an older KFP backend passes through as is


@dataclass(frozen=True)
class RunOutcome:
    version: str | None  # the registered (or reused) model version; None when nothing was
    reason: str  # one line for the user, either way


def await_registration(
    kfp_client: Any,
    run_id: str,
    *,
    tracking_uri: str,
    model_name: str,
    timeout_s: float | None = None,
    mlflow_client: Any = None,
) -> RunOutcome:
    """Wait for the run, then look up the version it registered; SluiceError when unreachable."""
    run = wait_for_run(kfp_client, run_id, timeout_s or DEFAULT_TIMEOUT_S)
    state = str(getattr(run, "state", "") or "UNKNOWN").upper()
    if state != "SUCCEEDED":
        return RunOutcome(None, f"KFP run {run_id} ended {state}: {run_error(run)}")
    client = mlflow_client or _mlflow_client(tracking_uri)
    return registration_of(client, model_name, run_id)


def wait_for_run(kfp_client: Any, run_id: str, timeout_s: float) -> Any:
    try:
        return kfp_client.wait_for_run_completion(run_id, timeout=timeout_s, sleep_duration=POLL_INTERVAL_S)
    except TimeoutError as exc:
        raise SluiceError(f"KFP run {run_id} did not finish within {timeout_s:g} s (--timeout)") from exc
    except Exception as exc:  # kfp_server_api.ApiException, transport errors
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SluiceError(f"cannot follow KFP run {run_id}: {first}") from exc


def run_error(run: Any) -> str:
    error = getattr(run, "error", None)
    message = getattr(error, "message", None) or (error if isinstance(error, str) else None)
    return message.strip().splitlines()[0] if message and message.strip() else "no error message from KFP"


def registration_of(client: Any, model_name: str, run_id: str) -> RunOutcome:
    """The version `run_id` registered or reused, else why it registered nothing."""
    created = _versions(client, model_name, f"tags.`{tags.PIPELINE_RUN_ID}` = '{_quote(run_id)}'")
    if created:
        version = max(created, key=lambda mv: int(mv.version))
        return RunOutcome(
            str(version.version), f"run {run_id} registered {model_name} version {version.version}"
        )
    marker = pipeline_run_tag(run_id)
    if marker is None:
        raise SluiceError(f"KFP run id {run_id!r} cannot be looked up as an MLflow tag")
    reused = _versions(client, model_name, f"tags.`{marker}` = '{REUSED}'")
    if reused:
        version = max(reused, key=lambda mv: int(mv.version))
        return RunOutcome(
            str(version.version),
            f"run {run_id} reused {model_name} version {version.version} (same data, code and parameters)",
        )
    stopped = _stopped_at_a_gate(client, model_name, run_id, marker)
    if stopped is not None:
        return stopped
    if _versions(client, model_name, f"tags.`{tags.PIPELINE_RUN_ID}` = '{UNRESOLVED_RUN_ID}'"):
        return RunOutcome(
            None,
            f"run {run_id}: versions of {model_name} carry the literal {UNRESOLVED_RUN_ID} as their "
            "pipeline run id: this KFP backend does not substitute it (needs KFP >= 2.4)",
        )
    return RunOutcome(
        None,
        f"run {run_id} registered nothing: no model version, rejected candidate or data-gate attempt in "
        f"MLflow is tagged with this run, so it stopped before its gates recorded anything (see KFP)",
    )


def _stopped_at_a_gate(client: Any, model_name: str, run_id: str, marker: str) -> RunOutcome | None:
    """The refusal (model gate, data gate) or no-op this run left on an MLflow run, with its reason."""
    from gates.evidence.history import attempts_of_run

    for mark, what in ((REJECTED, "model gate failed"), (DATA_BLOCKED, "data gate failed"), (NO_OP, "")):
        found = _runs(client, model_name, f"tags.`{marker}` = '{mark}'")
        if not found:
            continue
        mlflow_run = found[0].info.run_id
        if mark == NO_OP:
            return RunOutcome(
                None,
                f"run {run_id} registered nothing: its data gate found no drift and training was wanted "
                f"only on drift, a no-op run (MLflow run {mlflow_run})",
            )
        reason = found[0].data.tags.get(tags.EVIDENCE_REASON) if mark == REJECTED else None
        mine = [a for a in attempts_of_run(found[0]) if a.pipeline_run_id == run_id and a.reason]
        if mine:  # this pipeline run's own attempt: its verdict (failed, inconclusive) and reason
            what, reason = f"{mine[-1].kind} gate {mine[-1].verdict}", mine[-1].reason
        return RunOutcome(
            None,
            f"run {run_id} registered nothing: {what}: {reason or 'no reason recorded'} "
            f"(MLflow run {mlflow_run})",
        )
    return None


def _quote(value: str) -> str:
    return value.replace("'", "\\'")


def _versions(client: Any, model_name: str, condition: str) -> list:
    return _mlflow_call(
        "model version search",
        lambda: list(client.search_model_versions(f"name = '{_quote(model_name)}' and {condition}")),
    )


def _runs(client: Any, experiment_name: str, condition: str) -> list:
    experiment = _mlflow_call("experiment lookup", lambda: client.get_experiment_by_name(experiment_name))
    if experiment is None:
        return []
    return _mlflow_call(
        "run search",
        lambda: list(client.search_runs([experiment.experiment_id], filter_string=condition, max_results=1)),
    )


def _mlflow_call(what: str, call):
    from mlflow.exceptions import MlflowException

    try:
        return call()
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            return []
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise SluiceError(f"{what} in MLflow failed: {first}") from exc
    except OSError as exc:  # requests' connection errors subclass OSError
        raise SluiceError(f"{what}: cannot reach the MLflow tracking server ({type(exc).__name__})") from exc


def _mlflow_client(tracking_uri: str):
    # Fail in seconds, not minutes, when the server is down (MLflow retries 7 times by default).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


__all__ = ["RunOutcome", "await_registration", "registration_of"]
