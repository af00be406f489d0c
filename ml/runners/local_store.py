"""The laptop's MLflow store: SQLite inside the Sluice home, created off the critical path.

MLflow builds its schema with about thirty migrations on first use (seconds on this machine),
which would otherwise sit on the critical path of the log step. `prepare_tracking_store` starts
that work in a child process while the inputs are hashed and checked. The child holds an
exclusive flock on `<db>.init.lock` (inherited descriptor) until it exits; MLflow steps take a
shared lock before touching the store (`ml.registry.client.wait_for_store_init`), so they wait
for a half-built schema instead of racing it.
"""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

from ml.registry.client import artifact_root_for, init_lock_path, sqlite_db

__all__ = ["artifact_root_for", "prepare_tracking_store"]


def prepare_tracking_store(tracking_uri: str, log: Path) -> subprocess.Popen | None:
    """Create a new SQLite tracking store in the background; None when there is nothing to create."""
    lock_path = init_lock_path(tracking_uri)
    db = sqlite_db(tracking_uri)
    if lock_path is None or db is None or db.exists():
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock, log.open("ab") as err:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).search_experiments(max_results=1)",
                tracking_uri,
            ],
            pass_fds=(lock.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
