"""The laptop's MLflow store: SQLite inside the Sluice home, created off the critical path.

MLflow builds its schema with about seventy migrations on first use (seconds on this machine),
which would otherwise sit on the critical path of the log step. `prepare_tracking_store` starts
that work in a child process while the inputs are hashed and checked. The child holds an
exclusive flock on `<db>.init.lock` (inherited descriptor) until it exits; MLflow steps take a
shared lock before touching the store (`ml.registry.client.wait_for_store_init`), so they wait
for the store instead of racing it. The child builds the store under a temporary name and renames
it into place (`ml.registry.sqlite_store`): killed at any instant, it leaves no half-migrated
store, and it dies with the run (`sluice.lifeline`).

A store a kill broke before that (interrupted migrations) is rebuilt when it holds no runs, and
otherwise refused with the exact command that sets it aside: Sluice never hands MLflow a schema
MLflow cannot open or upgrade.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
from pathlib import Path
from typing import TextIO

from ml.registry import sqlite_store
from ml.registry.client import init_lock_path, sqlite_db
from sluice import lifeline
from sluice.errors import SluiceError


def prepare_tracking_store(
    tracking_uri: str, log: Path, out: TextIO | None = None
) -> subprocess.Popen | None:
    """Start creating the SQLite store in the background; None when there is nothing to create."""
    lock_path = init_lock_path(tracking_uri)
    db = sqlite_db(tracking_uri)
    if lock_path is None or db is None or sqlite_store.inspect(db).kind == "current":
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock, log.open("ab") as err:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent run may be creating it: wait, then look again
        state = sqlite_store.inspect(db)
        if state.kind == "current":
            return None
        if state.kind == "broken":
            _clear_broken(db, state, out or sys.stdout)
        return subprocess.Popen(
            [sys.executable, "-m", "ml.registry.sqlite_store", str(db)],
            pass_fds=(lock.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=err,
            env={**os.environ, lifeline.ENV: lifeline.token()},
        )


def _clear_broken(db: Path, state: sqlite_store.StoreState, out: TextIO) -> None:
    """Delete a broken store that holds nothing; refuse (exit 2) one that holds runs."""
    if state.runs or state.models:
        raise SluiceError(
            f"MLflow store {db} is half-migrated ({state.describe()}) and holds {state.holdings()}: "
            f"set it aside with `{sqlite_store.set_aside_command(db)}` and run again "
            "(a new store is created; the old file keeps its runs)"
        )
    sqlite_store.remove(db)
    out.write(f"sluice: MLflow store {db} was half-migrated ({state.describe()}) and held no runs: rebuilt\n")
