"""Connecting to the tracking store: the URI given, quiet logs, and never a half-built SQLite schema."""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
from typing import Any

from sluice.environment import MLFLOW_PROGRESS_BAR_ENV
from sluice.errors import SluiceError


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message: MLflow's errors carry whole tracebacks."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def sqlite_db(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI (`sqlite:////abs` → /abs), else None."""
    return Path(tracking_uri.removeprefix("sqlite:///")) if tracking_uri.startswith("sqlite:///") else None


def artifact_root_for(tracking_uri: str, home_artifacts: Path) -> str:
    """Local stores keep artifacts under the Sluice home; a server decides for itself."""
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return ""
    return home_artifacts.as_uri()


def init_lock_path(tracking_uri: str) -> Path | None:
    """`<db>.init.lock`: held exclusively while a new SQLite store is being created."""
    db = sqlite_db(tracking_uri)
    return None if db is None else db.with_name(db.name + ".init.lock")


def wait_for_store_init(tracking_uri: str) -> None:
    """If `sluice run` is still creating this SQLite store in the background, wait for it; if
    nobody created it (its creator was killed), create it here, whole (never MLflow in place)."""
    lock_path = init_lock_path(tracking_uri)
    db = sqlite_db(tracking_uri)
    if lock_path is None or db is None:
        return
    if lock_path.exists():
        with lock_path.open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)
    if db.exists():
        return
    from ml.registry import sqlite_store

    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not db.exists():
            sqlite_store.create(db)


def quiet_downloads() -> None:
    """No MLflow download progress bars: they appear whenever tqdm is installed (Feast brings it
    in) and would break the CLI's one-line-per-step output and its empty stderr on success."""
    os.environ.setdefault(MLFLOW_PROGRESS_BAR_ENV, "false")


def connect(tracking_uri: str):
    """The `mlflow` module, pointed at `tracking_uri` once its store is ready."""
    quiet_downloads()
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not tracking_uri:
        raise SluiceError("no MLflow tracking URI given to the pipeline (parameter tracking_uri)")
    wait_for_store_init(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow


def client(tracking_uri: str) -> Any:
    """A client bound to one server for both tracking and registry (never the global defaults)."""
    quiet_downloads()
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def experiment_id(mlflow: Any, name: str, artifact_root: str) -> str:
    """The experiment named after the model, created on first use (concurrent creators agree)."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_root or None)
    except Exception:  # created concurrently by another run: use that one
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id
