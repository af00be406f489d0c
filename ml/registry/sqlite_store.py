"""The laptop's SQLite tracking store: created whole or not at all, never left half-migrated.

MLflow builds a new SQLite store with about seventy migrations, and SQLite runs their DDL outside
any transaction: a process killed in the middle leaves a schema MLflow itself refuses to open
("out-of-date database schema") or to upgrade ("table … already exists"). So a new store is built
under a temporary name (`<db>.new`) and renamed into place only once MLflow has finished, under
the exclusive `<db>.init.lock` its callers hold; a kill leaves at most a `.new` file the next
creator deletes.

`inspect` tells a good store from one a kill broke before stores were made this way, reading
SQLite directly and MLflow's migration scripts as text (no MLflow import: an unchanged re-run of
`sluice run` stays well under two seconds). The head revision is where those scripts end.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import os
import re
import shlex
import sqlite3
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sluice import lifeline

NEW_SUFFIX = ".new"
SIDE_FILES = ("-journal", "-wal", "-shm")
_REVISION = re.compile(r"^revision\b[^=\n]*=\s*[\"']([0-9a-f]+)[\"']", re.M)
_DOWN = re.compile(r"^down_revision\b[^=\n]*=\s*(.+)$", re.M)


@dataclass(frozen=True)
class StoreState:
    """What a store file holds: `missing`, `current` (at MLflow's head), or `broken`."""

    kind: str
    revision: str | None = None
    head: str | None = None
    runs: int = 0  # what rebuilding would lose (-1: cannot tell)
    models: int = 0
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.problems)

    def holdings(self) -> str:
        if self.runs < 0:
            return "unknown contents"
        held = [f"{n} {what}{'s' if n != 1 else ''}" for n, what in ((self.runs, "run"),
                (self.models, "registered model")) if n]  # fmt: skip
        return " and ".join(held) or "nothing"


def migrations_dir() -> Path | None:
    spec = importlib.util.find_spec("mlflow")  # finds the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "store" / "db_migrations" / "versions"
    return path if path.is_dir() else None


def head_revision() -> str | None:
    """The one revision no migration builds on; None when the scripts cannot be read."""
    folder = migrations_dir()
    if folder is None:
        return None
    revisions, parents = set(), set()
    for script in folder.glob("*.py"):
        text = script.read_text(errors="replace")
        if (found := _REVISION.search(text)) is None:
            continue
        revisions.add(found.group(1))
        if (down := _DOWN.search(text)) is not None:
            parents.update(re.findall(r"[\"']([0-9a-f]+)[\"']", down.group(1)))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def inspect(db: Path) -> StoreState:
    """Is `db` a complete store this MLflow can open? Read-only; never creates the file."""
    if not db.exists():
        return StoreState("missing")
    head = head_revision()
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if (
                "alembic_version" in tables) else None  # fmt: skip
            runs, models = (
                conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] if table in tables else 0  # noqa: S608
                for table in ("runs", "registered_models")
            )
    except sqlite3.DatabaseError as exc:
        return StoreState("broken", head=head, runs=-1, problems=[f"not readable as SQLite ({exc})"])
    revision = row[0] if row else None
    problems = [f"leftover table {t}" for t in sorted(tables) if t.startswith("_alembic_tmp_")]
    if head is not None and revision != head:
        problems.insert(0, f"schema at revision {revision or 'none'}, MLflow expects {head}")
    return StoreState("broken" if problems else "current", revision, head, runs, models, problems)


def remove(db: Path) -> None:
    for path in (db, *(db.with_name(db.name + side) for side in SIDE_FILES)):
        path.unlink(missing_ok=True)


def set_aside_command(db: Path) -> str:
    """The exact command that keeps a broken store's data and lets the next run start afresh."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"mv {shlex.quote(str(db))} {shlex.quote(f'{db}.half-migrated-{stamp}')}"


def create(db: Path) -> None:
    """Build a complete store at `db` (the caller holds the init lock exclusively)."""
    building = db.with_name(db.name + NEW_SUFFIX)
    remove(building)  # what a killed creator left
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    mlflow.MlflowClient(f"sqlite:///{building}").search_experiments(max_results=1)  # runs the migrations
    with open(building, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(building, db)
    directory = os.open(db.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def main(argv: list[str]) -> int:
    """`python -m ml.registry.sqlite_store DB`: what `sluice run` starts in the background."""
    lifeline.install()  # dies with the run that started it (a half-built `.new` is harmless)
    create(Path(argv[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
