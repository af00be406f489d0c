"""The SQLite store's inspection (no MLflow import) and the MLflow timeout budget's configuration."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from ml.registry import sqlite_store
from ml.registry.budget import HTTP_DEFAULTS, STEP_RETRIES_ENV, Budget
from sluice.errors import SluiceError


def test_the_head_revision_read_from_the_scripts_is_mlflows_own():
    from mlflow.store.db.utils import _get_latest_schema_revision

    assert sqlite_store.head_revision() == _get_latest_schema_revision()


def test_inspect_tells_missing_current_and_broken_stores(tmp_path):
    db = tmp_path / "mlflow.db"
    assert sqlite_store.inspect(db).kind == "missing"
    create = [sys.executable, "-m", "ml.registry.sqlite_store", str(db)]
    subprocess.run(create, check=True, capture_output=True)
    assert sqlite_store.inspect(db).kind == "current"
    assert not db.with_name("mlflow.db.new").exists()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE _alembic_tmp_jobs (id TEXT)")
    broken = sqlite_store.inspect(db)
    assert broken.kind == "broken" and broken.problems == ["leftover table _alembic_tmp_jobs"]
    assert broken.holdings() == "nothing"
    (tmp_path / "garbage.db").write_bytes(b"not a database at all" * 100)
    unreadable = sqlite_store.inspect(tmp_path / "garbage.db")
    assert unreadable.kind == "broken" and unreadable.holdings() == "unknown contents"


def test_the_budget_defaults_and_what_users_set():
    assert Budget.from_env({}) == Budget()
    assert Budget().retry() == {"num_retries": 3, "backoff_duration": "5s", "backoff_factor": 2}
    mine = Budget.from_env({"MLFLOW_HTTP_REQUEST_TIMEOUT": "30", STEP_RETRIES_ENV: "1"})
    assert mine.http == {**HTTP_DEFAULTS, "MLFLOW_HTTP_REQUEST_TIMEOUT": "30"} and mine.step_retries == 1


@pytest.mark.parametrize(
    ("name", "value"),
    [("MLFLOW_HTTP_REQUEST_TIMEOUT", "soon"), (STEP_RETRIES_ENV, "-1"), (STEP_RETRIES_ENV, "1.5")],
)
def test_a_malformed_budget_is_a_one_line_usage_error(name, value):
    with pytest.raises(SluiceError, match=f"{name}='{value}' is not a non-negative integer"):
        Budget.from_env({name: value})
