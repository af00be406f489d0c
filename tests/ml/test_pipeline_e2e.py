"""The training pipeline end to end with KFP's real local runner, on SQLite and on a real MLflow
server backed by PostgreSQL.

Pipeline runs cost seconds each, so they happen once per module (fixtures) and the tests read
what they left behind. The training data is the demo slice re-spelled the way a careful reader
still accepts: a UTF-8 byte-order mark and every number quoted.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import re
from pathlib import Path

import pytest
from mlflow import MlflowClient

from gates import cli
from tests.ml.conftest import LENIENT_POLICY, STRICT_F1_POLICY, sqlite_versions

pytestmark = pytest.mark.slow

REQUIRED_VERSION_TAGS = (
    "sluice.data_sha256",
    "sluice.git_commit",
    "sluice.params",
    "sluice.pipeline_run_id",
    "sluice.model_type",
    "sluice.metric.accuracy",
    "sluice.metric.f1",
    "sluice.metric.roc_auc",
    "sluice.contract_sha256",
    "sluice.reference_data_sha256",
    "sluice.evidence_sha256",
    "sluice.evidence_passed",
)
STEP_LINE = re.compile(r"^  \[\s*\d+\] (\S.*?)\s{2,}(ok|cached|FAILED)\b")


@pytest.fixture(scope="module")
def careful_csv(demo_slice, tmp_path_factory) -> Path:
    """The slice with a BOM and all fields quoted (numbers included)."""
    rows = list(csv.reader(io.StringIO(demo_slice.current.read_text())))
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    path = tmp_path_factory.mktemp("careful") / "current-quoted.csv"
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    return path


def _args(home, data, demo_slice, policy=LENIENT_POLICY, *extra):
    return (
        "run",
        "--home",
        home,
        "--data",
        data,
        "--contract",
        demo_slice.contract,
        "--reference",
        demo_slice.reference,
        "--policy",
        policy,
        *extra,
    )


def _record(home: Path) -> dict:
    return json.loads((home / "runs" / "last-run.json").read_text())


def _run_module_scoped(request, *args):
    """`sluice run` in-process from a module-scoped fixture (capsys is function-scoped)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def sqlite_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("home-sqlite")


@pytest.fixture(scope="module")
def first_run(request, sqlite_home, careful_csv, demo_slice):
    code, out, err = _run_module_scoped(request, *_args(sqlite_home, careful_csv, demo_slice))
    return {"code": code, "out": out, "err": err, "record": _record(sqlite_home)}


def test_first_run_registers_a_challenger_on_sqlite(first_run, sqlite_home):
    assert first_run["code"] == 0, first_run["out"] + first_run["err"]
    record = first_run["record"]
    assert record["outcome"] == "registered" and record["version"] == "1"
    client = MlflowClient(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    assert client.get_registered_model("credit-default").aliases == {"challenger": 1}
    version = client.get_model_version_by_alias("credit-default", "challenger")
    missing = [t for t in REQUIRED_VERSION_TAGS if t not in version.tags]
    assert missing == []
    tags = version.tags
    assert tags["sluice.data_sha256"] == record["identity"]["data_sha256"]
    assert tags["sluice.reference_data_sha256"] == record["identity"]["reference_sha256"]
    assert tags["sluice.evidence_passed"] == "true"
    assert json.loads(tags["sluice.params"])["candidate"] == record["selected"]
    assert float(tags["sluice.metric.f1"]) == pytest.approx(record["holdout"]["f1"], abs=1e-4)
    run_artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"data", "contract", "evidence", "candidates.json"} <= run_artifacts
    holdout = client.download_artifacts(version.run_id, "data/holdout.parquet")
    # MLflow 3 keeps the model as a LoggedModel linked to the run; runs:/<id>/model resolves to it.
    import mlflow.sklearn
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    model = mlflow.sklearn.load_model(f"runs:/{version.run_id}/model")
    assert len(model.predict(pd.read_parquet(holdout))) == 600
    evidence = {Path(a.path).name for a in client.list_artifacts(version.run_id, "evidence")}
    assert {
        "data-evidence.json",
        "model-evidence.json",
        "model-evidence.md",
        "model-evidence.html",
    } <= evidence
    local_json = client.download_artifacts(version.run_id, "evidence/model-evidence.json")
    assert hashlib.sha256(Path(local_json).read_bytes()).hexdigest() == tags["sluice.evidence_sha256"]


def test_first_run_prints_one_line_per_step_and_a_summary(first_run, sqlite_home):
    steps = [m.group(1) for line in first_run["out"].splitlines() if (m := STEP_LINE.match(line))]
    assert steps[:3] == ["load", "data gate", "split"]
    assert sorted(steps[3:9]) == ["evaluate"] * 3 + ["train"] * 3
    assert steps[9:] == ["select", "log to MLflow", "model gate", "register"]
    out = first_run["out"]
    for name in ("logistic_regression", "decision_tree", "random_forest"):
        assert re.search(rf"^[* ] {name}\s+0\.\d{{4}}\s+0\.\d{{4}}\s+0\.\d{{4}}$", out, re.M), name
    assert "registered model version credit-default 1 (alias challenger)" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{sqlite_home / 'mlflow.db'}" in out
    assert first_run["err"].strip() == ""


@pytest.fixture(scope="module")
def unchanged_rerun(request, first_run, sqlite_home, careful_csv, demo_slice):
    logs_before = set((sqlite_home / "logs").iterdir())
    code, out, err = _run_module_scoped(request, *_args(sqlite_home, careful_csv, demo_slice))
    return {
        "code": code,
        "out": out,
        "err": err,
        "new_logs": set((sqlite_home / "logs").iterdir()) - logs_before,
    }


def test_unchanged_rerun_answers_from_its_record_and_creates_nothing(unchanged_rerun, sqlite_home):
    assert unchanged_rerun["code"] == 0, unchanged_rerun["err"]
    assert "nothing to do" in unchanged_rerun["out"]
    assert "reused model version credit-default 1" in unchanged_rerun["out"]
    assert unchanged_rerun["new_logs"] == set()  # no pipeline was started
    assert sqlite_versions(sqlite_home) == [1]


@pytest.fixture(scope="module")
def rerun_without_record(request, unchanged_rerun, first_run, sqlite_home, careful_csv, demo_slice):
    """The fast-path record gone: the full pipeline runs, on cache, and registration is idempotent."""
    (sqlite_home / "runs" / f"{first_run['record']['run_key']}.json").unlink()
    code, out, err = _run_module_scoped(request, *_args(sqlite_home, careful_csv, demo_slice))
    return {"code": code, "out": out, "err": err, "record": _record(sqlite_home)}


def test_rerun_without_record_uses_the_cache_and_reuses_the_version(
    rerun_without_record, first_run, sqlite_home
):
    assert rerun_without_record["code"] == 0, rerun_without_record["out"] + rerun_without_record["err"]
    out = rerun_without_record["out"]
    assert "reused version 1" in out
    cached = [
        m.group(1) for line in out.splitlines() if (m := STEP_LINE.match(line)) and m.group(2) == "cached"
    ]
    assert sorted(cached) == sorted(["load", "split", "select"] + ["train"] * 3 + ["evaluate"] * 3)
    assert sqlite_versions(sqlite_home) == [1]
    record = rerun_without_record["record"]
    assert record["mlflow_run_id"] == first_run["record"]["mlflow_run_id"]  # the same MLflow run
    assert record["candidates"] == first_run["record"]["candidates"]


def test_failing_model_gate_registers_nothing_and_keeps_evidence(
    request, rerun_without_record, sqlite_home, careful_csv, demo_slice
):
    code, out, err = _run_module_scoped(
        request, *_args(sqlite_home, careful_csv, demo_slice, STRICT_F1_POLICY)
    )
    assert code == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sluice: model gate failed: quality.f1"), err
    assert "nothing was registered" in out
    assert sqlite_versions(sqlite_home) == [1]
    record = _record(sqlite_home)
    client = MlflowClient(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.tags["sluice.evidence_passed"] == "false"
    assert "evidence/model-evidence.json" in {
        a.path for a in client.list_artifacts(run.info.run_id, "evidence")
    }
    assert client.get_registered_model("credit-default").aliases == {"challenger": 1}


@pytest.fixture(scope="module")
def postgres_run(request, mlflow_server, tmp_path_factory, careful_csv, demo_slice):
    home = tmp_path_factory.mktemp("home-postgres")
    args = (*_args(home, careful_csv, demo_slice), "--tracking-uri", mlflow_server)
    code, out, err = _run_module_scoped(request, *args)
    return {"code": code, "out": out, "err": err, "record": _record(home), "home": home, "args": args}


def test_postgres_backed_server_registers_a_challenger(postgres_run, mlflow_server):
    assert postgres_run["code"] == 0, postgres_run["out"] + postgres_run["err"]
    client = MlflowClient(mlflow_server)
    version = client.get_model_version_by_alias("credit-default", "challenger")
    assert version.version == postgres_run["record"]["version"]
    assert [t for t in REQUIRED_VERSION_TAGS if t not in version.tags] == []
    assert {a.path for a in client.list_artifacts(version.run_id, "data")} == {"data/holdout.parquet"}
    assert f"browse: {mlflow_server}" in postgres_run["out"]


def test_two_independent_runs_give_identical_metrics(postgres_run, first_run):
    """Fresh home, fresh cache, other store: same data, code and parameters → same numbers."""
    assert postgres_run["record"]["candidates"] == first_run["record"]["candidates"]
    assert postgres_run["record"]["holdout"] == first_run["record"]["holdout"]
    assert postgres_run["record"]["selected"] == first_run["record"]["selected"]


def test_unchanged_rerun_against_the_server_is_answered_from_the_record(request, postgres_run, mlflow_server):
    code, out, err = _run_module_scoped(request, *postgres_run["args"])
    assert code == 0, err
    assert "nothing to do" in out
    client = MlflowClient(mlflow_server)
    assert len(client.search_model_versions("name='credit-default'")) == 1


def test_only_on_drift_without_drift_is_a_no_op_run_with_evidence(sluice, tmp_path, demo_slice):
    result = sluice(*_args(tmp_path, demo_slice.current, demo_slice), "--only-on-drift")
    assert result.code == 0, result.out + result.err
    assert "found no drift; nothing was retrained (no-op run)" in result.out
    assert "train " not in result.out
    assert sqlite_versions(tmp_path) == []
    record = _record(tmp_path)
    assert record["outcome"] == "no-op"
    evidence = json.loads(next((tmp_path / "evidence").rglob("data-evidence.json")).read_text())
    assert evidence["passed"] is True and evidence["drift_detected"] is False
