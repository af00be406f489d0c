"""Finding and fetching model versions: by number, by alias, as files on disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.registry.client import client, one_line, sqlite_db
from sluice import tags
from sluice.errors import SluiceError


def download_model(model_uri: str, tracking_uri: str, dst: Path) -> Path:
    """Fetch a model's files. Registry URIs are resolved through a client bound to `tracking_uri`:
    mlflow's download_artifacts resolves `models:/` against the *global* registry URI, which in a
    KFP component or a test process is not necessarily the server we were given."""
    import mlflow.artifacts

    try:
        artifact_uri = model_uri
        if model_uri.startswith("models:/"):
            artifact_uri = _registry_download_uri(model_uri, tracking_uri)
        return Path(
            mlflow.artifacts.download_artifacts(
                artifact_uri=artifact_uri, tracking_uri=tracking_uri, dst_path=str(dst)
            )
        )
    except Exception as exc:  # MLflow raises MlflowException, OSError or requests errors here
        raise SluiceError(f"cannot download model {model_uri} from {tracking_uri}: {one_line(exc)}") from exc


def _registry_download_uri(model_uri: str, tracking_uri: str) -> str:
    ref = model_uri.removeprefix("models:/")
    registry = client(tracking_uri)
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = registry.get_model_version_by_alias(name, alias).version
    elif "/" in ref:
        name, version = ref.rsplit("/", 1)
    else:
        return model_uri
    return registry.get_model_version_download_uri(name, version)


def find_alias(tracking_uri: str, model_name: str, alias: str) -> Any | None:
    """The model version holding `alias`, or None when there is none (e.g. no champion yet)."""
    from mlflow.exceptions import MlflowException

    try:
        return client(tracking_uri).get_model_version_by_alias(model_name, alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "NOT_FOUND", "INVALID_PARAMETER_VALUE"):
            return None
        raise SluiceError(f"cannot look up alias {alias!r} of {model_name}: {one_line(exc)}") from exc


def version_for_run_key(tracking_uri: str, model_name: str, run_key: str) -> str | None:
    """The registry's final word on a run: the newest version registered for `run_key` whose
    registration completed with passing evidence, or None. SluiceError when MLflow cannot answer."""
    from ml.registry.budget import apply_http_defaults

    db = sqlite_db(tracking_uri)
    if db is not None and not db.exists():  # never let MLflow create a store in place, half-done
        return None
    apply_http_defaults()
    try:
        found = client(tracking_uri).search_model_versions(f"name='{model_name}'")
    except Exception as exc:  # MlflowException, OSError or requests errors: no answer either way
        raise SluiceError(f"MLflow at {tracking_uri} did not answer: {one_line(exc)}") from exc
    complete = [
        int(mv.version)
        for mv in found
        if (mv.tags or {}).get(tags.RUN_KEY) == run_key
        and (mv.tags or {}).get(tags.REGISTRATION_COMPLETE) == "true"
        and (mv.tags or {}).get(tags.EVIDENCE_PASSED) == "true"
    ]
    return str(max(complete)) if complete else None
