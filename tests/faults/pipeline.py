"""What the `sluice run` fault scenarios share: arguments, and reading what a run left behind."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from tests.conftest import git
from tests.faults.conftest import FAULT_POLICY
from tests.ml.conftest import make_gitops_repo, promotion_branches, sqlite_versions

MODEL = "credit-default"
STAGING_BRANCH = f"promote/{MODEL}/staging-v1"
STORE_PREFIX = "mlflow.db"


def run_args(home: Path, demo, repo: Path | None = None, tracking_uri: str | None = None) -> list[str]:
    args = ["run", "--home", str(home), "--data", str(demo.current), "--contract", str(demo.contract),
            "--reference", str(demo.reference), "--policy", str(FAULT_POLICY)]  # fmt: skip
    args += ["--repo", str(repo)] if repo else ["--no-promote"]
    if tracking_uri:
        args += ["--tracking-uri", tracking_uri]
    return args


def gitops_repo(base: Path) -> tuple[Path, str]:
    """A repository to promote into, and its HEAD before any run."""
    base.mkdir(parents=True, exist_ok=True)
    repo = make_gitops_repo(base)
    return repo, git(repo, "rev-parse", "HEAD")


def promotion_state(repo: Path, head: str) -> dict[str, int]:
    """Per promotion branch: how many commits it has on top of the original HEAD."""
    return {
        branch: int(git(repo, "rev-list", "--count", f"{head}..{tip}"))
        for branch, tip in promotion_branches(repo).items()
    }


def versions(home: Path) -> list[int]:
    return sqlite_versions(home, MODEL)


def store_files(home: Path) -> list[Path]:
    """Every SQLite file a store creation may be writing (the store itself or a temporary copy)."""
    return [
        p
        for p in sorted(home.glob(f"{STORE_PREFIX}*"))
        if p.is_file() and not p.name.endswith(("-journal", "-wal", "-shm", ".lock"))
    ]


def mid_migration(path: Path, head: str) -> bool:
    """True while MLflow's migrations are half done in `path`: the state a kill turned into #14's
    `out-of-date database schema` and `_alembic_tmp_jobs already exists` before stores were atomic."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.01) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "alembic_version" not in tables:
                return False
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    if row is None or row[0] == head:
        return False
    return "scheduler_leases" in tables or any(t.startswith("_alembic_tmp_") for t in tables)


def wait_mid_migration(home: Path, head: str, running, timeout: float = 600) -> bool:
    """Poll (2 ms) until some store file of `home` is half migrated; False if creation ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and running():
        if any(mid_migration(p, head) for p in store_files(home)):
            return True
        for path in store_files(home):
            if path.name == STORE_PREFIX and not mid_migration(path, head) and _at(path, head):
                return False  # the store is complete: this attempt missed its window
        time.sleep(0.002)
    return False


def _at(path: Path, head: str) -> bool:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=0.01) as conn:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.Error:
        return False
    return row is not None and row[0] == head
