"""#14 break 1: a `sluice run` killed while its SQLite store is migrated must not leave a store
that no re-run recovers; stores half-migrated before that was fixed are repaired or refused."""

from __future__ import annotations

import shlex
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.faults.conftest import repetitions
from tests.faults.harness import clean_env, leftovers, start, survivors
from tests.faults.pipeline import run_args, versions, wait_mid_migration

pytestmark = pytest.mark.slow

MISSED_LIMIT = 5  # fresh attempts when the store finished before the poll saw it half-done
# The revision before MLflow 3.17.2's head: the store #14 reported as "found version 75868b020152".
BEFORE_HEAD = "75868b020152"


def head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


@pytest.mark.scenario("run: kill -9 of the process group mid-migration of a new store")
@pytest.mark.parametrize("rep", repetitions(count=3))
def test_a_run_killed_while_migrating_its_new_store_is_recovered_by_a_rerun(
    rep, tmp_path, fault_slice, matrix
):
    head = head_revision()
    for attempt in range(MISSED_LIMIT):
        home = tmp_path / f"home-{attempt}"
        run = start(run_args(home, fault_slice), tmp_path, new_session=True)
        caught = wait_mid_migration(home, head, lambda run=run: run.proc.poll() is None)
        run.kill(group=True)
        if caught:
            break
    else:
        pytest.fail(f"the store finished migrating before the poll saw it half-done, {MISSED_LIMIT} times")
    assert survivors(run.tag) == []

    again = start(run_args(home, fault_slice), tmp_path)
    code, out = again.finish()
    assert code == 0, out
    assert versions(home) == [1]
    assert [line for line in out.splitlines() if "mlflow db upgrade" in line] == []
    assert leftovers(tmp_path / "tmp") == []
    matrix.record("recovered")


def make_store(db: Path, with_run: bool = False) -> str:
    """A store made by MLflow itself, at its head revision; optionally holding one run."""
    uri = f"sqlite:///{db}"
    code = (
        "import sys, mlflow\n"
        "mlflow.MlflowClient(sys.argv[1]).search_experiments(max_results=1)\n"
        "if sys.argv[2] == '1':\n"
        "    mlflow.set_tracking_uri(sys.argv[1])\n"
        "    with mlflow.start_run(): mlflow.log_param('kept', 'yes')\n"
    )
    flag = "1" if with_run else "0"
    subprocess.run([sys.executable, "-c", code, uri, flag], check=True, capture_output=True, env=clean_env())
    return uri


def interrupt_last_migration(db: Path, leftover_table: bool) -> None:
    """The states #14 found after kills during MLflow's last migration (dc11669786a5): its tables
    created but the revision not stamped; optionally batch mode's `_alembic_tmp_jobs` left over."""
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = ?", (BEFORE_HEAD,))
        if leftover_table:
            conn.execute("CREATE TABLE _alembic_tmp_jobs AS SELECT * FROM jobs")


@pytest.mark.parametrize("leftover_table", [False, True], ids=["unstamped", "alembic-tmp-table"])
def test_a_half_migrated_store_without_runs_is_rebuilt(tmp_path, leftover_table, capsys):
    from ml.runners.local_store import prepare_tracking_store

    db = tmp_path / "mlflow.db"
    uri = make_store(db)
    interrupt_last_migration(db, leftover_table)
    child = prepare_tracking_store(uri, tmp_path / "init.log")
    if child is not None:
        assert child.wait(timeout=300) == 0, (tmp_path / "init.log").read_text()
    import mlflow

    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("after-repair")
    assert client.create_run(experiment).info.run_id
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    notes = capsys.readouterr().out
    assert "half-migrated" in notes and BEFORE_HEAD in notes and "rebuilt" in notes, notes


def test_a_half_migrated_store_holding_runs_is_refused_with_the_exact_repair_command(tmp_path, fault_slice):
    home = tmp_path / "home"
    home.mkdir()
    db = home / "mlflow.db"
    make_store(db, with_run=True)
    interrupt_last_migration(db, leftover_table=False)
    refused = start(run_args(home, fault_slice), tmp_path)
    code, out = refused.finish()
    lines = [line for line in refused.err_path.read_text().splitlines() if line.strip()]
    assert code == 2, out
    assert len(lines) == 1 and "half-migrated" in lines[0] and "1 run" in lines[0], lines
    command = lines[0].split("`")[1]
    subprocess.run(command, shell=True, check=True)  # noqa: S602 - the command the message gives
    again = start(run_args(home, fault_slice), tmp_path)
    code, out = again.finish()
    assert code == 0, out
    assert versions(home) == [1]
    kept = [p for p in home.iterdir() if p.name.startswith("mlflow.db.") and "half-migrated" in p.name]
    assert len(kept) == 1 and shlex.quote(str(kept[0])) in command  # the runs are set aside, not deleted
