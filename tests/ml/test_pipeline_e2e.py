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
import yaml
from mlflow import MlflowClient

from sluice import cli, tags
from tests.conftest import git
from tests.ml.conftest import (
    LENIENT_POLICY,
    STRICT_F1_POLICY,
    make_gitops_repo,
    promotion_branches,
    sqlite_versions,
)

pytestmark = pytest.mark.slow

REQUIRED_VERSION_TAGS = (
    tags.DATA_SHA256,
    tags.CODE_COMMIT,
    tags.CODE_VERSION,
    tags.PARAMS,
    tags.PIPELINE_RUN_ID,
    tags.MODEL_TYPE,
    tags.metric_tag("accuracy"),
    tags.metric_tag("f1"),
    tags.metric_tag("roc_auc"),
    tags.CONTRACT_SHA256,
    tags.REFERENCE_SHA256,
    tags.EVIDENCE_SHA256,
    tags.EVIDENCE_PASSED,
    tags.EVIDENCE_ARTIFACT,
    tags.EVIDENCE_ATTEMPT,
)
STATUSES = "ok|cached|error|passed|advisory|FAILED|inconclusive|no-op"  # a step's outcome, a gate's verdict
STEP_LINE = re.compile(rf"^  \[\s*\d+\] (\S.*?)\s{{2,}}({STATUSES})\s")
STAGING_BRANCH = "promote/credit-default/staging-v1"
STAGING_FILE = "apps/credit-default/overlays/staging/model-version.yaml"


@pytest.fixture(scope="module")
def careful_csv(demo_slice, tmp_path_factory) -> Path:
    """The slice with a BOM and all fields quoted (numbers included)."""
    rows = list(csv.reader(io.StringIO(demo_slice.current.read_text())))
    buffer = io.StringIO()
    csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    path = tmp_path_factory.mktemp("careful") / "current-quoted.csv"
    path.write_bytes(b"\xef\xbb\xbf" + buffer.getvalue().encode())
    return path


def _args(home, data, demo_slice, policy=LENIENT_POLICY, *extra, repo=None):
    """`sluice run` arguments; without `repo` the run must not promote (pytest runs in the work tree)."""
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
        *(("--repo", repo) if repo else ("--no-promote",)),
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
def gitops_repo(tmp_path_factory) -> dict:
    """The repository a passing run promotes into, and what it looked like before."""
    repo = make_gitops_repo(tmp_path_factory.mktemp("promote-into"))
    return {
        "path": repo,
        "head": git(repo, "rev-parse", "HEAD"),
        "branch": git(repo, "symbolic-ref", "HEAD"),
        "staging_file": (repo / STAGING_FILE).read_bytes(),
    }


@pytest.fixture(scope="module")
def first_run(request, sqlite_home, careful_csv, demo_slice, gitops_repo):
    args = _args(sqlite_home, careful_csv, demo_slice, repo=gitops_repo["path"])
    code, out, err = _run_module_scoped(request, *args)
    branches = promotion_branches(gitops_repo["path"])
    return {"code": code, "out": out, "err": err, "record": _record(sqlite_home), "branches": branches}


def test_first_run_registers_a_challenger_on_sqlite(first_run, sqlite_home):
    assert first_run["code"] == 0, first_run["out"] + first_run["err"]
    record = first_run["record"]
    assert record["outcome"] == "registered" and record["version"] == "1"
    client = MlflowClient(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    assert client.get_registered_model("credit-default").aliases == {"challenger": 1}
    version = client.get_model_version_by_alias("credit-default", "challenger")
    missing = [t for t in REQUIRED_VERSION_TAGS if t not in version.tags]
    assert missing == []
    found = version.tags
    assert found[tags.DATA_SHA256] == record["identity"]["data_sha256"]
    assert found[tags.REFERENCE_SHA256] == record["identity"]["reference_sha256"]
    assert found[tags.CODE_COMMIT] == record["identity"]["code_commit"]
    assert found[tags.EVIDENCE_PASSED] == "true"
    assert json.loads(found[tags.PARAMS])["candidate"] == record["selected"]
    assert float(found[tags.metric_tag("f1")]) == pytest.approx(record["holdout"]["f1"], abs=1e-4)
    run_artifacts = {a.path for a in client.list_artifacts(version.run_id)}
    assert {"data", "evidence", "candidates.json"} <= run_artifacts
    holdout = client.download_artifacts(version.run_id, "data/holdout.parquet")
    # MLflow 3 keeps the model as a LoggedModel linked to the run; runs:/<id>/model resolves to it.
    import mlflow.sklearn
    import pandas as pd

    mlflow.set_tracking_uri(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    model = mlflow.sklearn.load_model(f"runs:/{version.run_id}/model")
    assert len(model.predict(pd.read_parquet(holdout))) == 600
    attempts = {Path(a.path).name for a in client.list_artifacts(version.run_id, "evidence")}
    model_attempt = found[tags.EVIDENCE_ATTEMPT]
    assert model_attempt in attempts and len(attempts) == 2  # this run's data and model gate attempts
    (data_attempt,) = attempts - {model_attempt}
    def names(folder: str) -> set[str]:
        return {Path(a.path).name for a in client.list_artifacts(version.run_id, f"evidence/{folder}")}

    assert names(model_attempt) == {"model-evidence.json", "model-evidence.md", "model-evidence.html"}
    assert "data-evidence.json" in names(data_attempt)
    assert found[tags.EVIDENCE_ARTIFACT] == f"evidence/{model_attempt}/model-evidence.json"
    local_json = client.download_artifacts(version.run_id, found[tags.EVIDENCE_ARTIFACT])
    assert hashlib.sha256(Path(local_json).read_bytes()).hexdigest() == found[tags.EVIDENCE_SHA256]


def test_first_run_prints_one_line_per_step_and_a_summary(first_run, sqlite_home):
    steps = [m.group(1) for line in first_run["out"].splitlines() if (m := STEP_LINE.match(line))]
    assert steps[:3] == ["load", "data gate", "split"]
    statuses = dict(
        (m.group(1), m.group(2)) for line in first_run["out"].splitlines() if (m := STEP_LINE.match(line))
    )
    assert statuses["data gate"] == "passed" and statuses["model gate"] == "passed"
    assert "no-op" not in first_run["out"]  # it trained: nothing may call it a no-op
    assert steps[3:6] == ["train+evaluate"] * 3
    assert steps[6:] == ["select", "log to MLflow", "model gate", "register"]
    out = first_run["out"]
    for name in ("logistic_regression", "decision_tree", "random_forest"):
        assert re.search(rf"^[* ] {name}\s+0\.\d{{4}}\s+0\.\d{{4}}\s+0\.\d{{4}}$", out, re.M), name
    assert "registered model version credit-default 1 (alias challenger)" in out
    assert f"mlflow ui --backend-store-uri sqlite:///{sqlite_home / 'mlflow.db'}" in out
    assert first_run["err"].strip() == ""


def _assert_user_side_untouched(gitops_repo: dict) -> None:
    repo = gitops_repo["path"]
    assert git(repo, "symbolic-ref", "HEAD") == gitops_repo["branch"]
    assert git(repo, "rev-parse", "HEAD") == gitops_repo["head"]
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / STAGING_FILE).read_bytes() == gitops_repo["staging_file"]


def test_passing_run_promotes_into_a_local_staging_branch(first_run, gitops_repo, sqlite_home):
    assert first_run["code"] == 0, first_run["out"] + first_run["err"]
    repo = gitops_repo["path"]
    branches = first_run["branches"]
    assert list(branches) == [STAGING_BRANCH]
    assert git(repo, "rev-parse", f"{STAGING_BRANCH}^") == gitops_repo["head"]  # one commit on HEAD
    changed = git(repo, "diff", "--name-only", gitops_repo["head"], STAGING_BRANCH).splitlines()
    assert changed == [STAGING_FILE]
    overlay = yaml.safe_load(git(repo, "show", f"{STAGING_BRANCH}:{STAGING_FILE}"))
    assert overlay["metadata"]["annotations"]["sluice.dev/model-version"] == "1"
    artifacts = (sqlite_home / "artifacts").as_uri()
    assert overlay["spec"]["predictor"]["model"]["storageUri"].startswith(artifacts + "/")
    _assert_user_side_untouched(gitops_repo)
    out = first_run["out"]
    assert f"committed credit-default v1 to local branch {STAGING_BRANCH}" in out
    assert "overlay diff:" in out and f"+++ b/{STAGING_FILE}" in out
    rendered = out[out.index("  rendered:") :]
    assert re.search(r"^\s+storageUri: " + re.escape(artifacts) + "/", rendered, re.M), out
    assert re.search(r"^\s+sluice.dev/model-version: 1$", rendered, re.M), out
    assert re.search(r"^\s+\S+ \S*image: \S+@sha256:[0-9a-f]{64}$", rendered, re.M), out
    report = re.search(r"^\s+evidence report: (\S+)$", out, re.M)
    assert report and Path(report.group(1)).is_file() and Path(report.group(1)).name == "model-evidence.html"


@pytest.fixture(scope="module")
def unchanged_rerun(request, first_run, sqlite_home, careful_csv, demo_slice, gitops_repo):
    logs_before = set((sqlite_home / "logs").iterdir())
    args = _args(sqlite_home, careful_csv, demo_slice, repo=gitops_repo["path"])
    code, out, err = _run_module_scoped(request, *args)
    return {
        "code": code,
        "out": out,
        "err": err,
        "new_logs": set((sqlite_home / "logs").iterdir()) - logs_before,
    }


def test_unchanged_rerun_answers_from_its_record_and_creates_nothing(
    unchanged_rerun, sqlite_home, gitops_repo, first_run
):
    assert unchanged_rerun["code"] == 0, unchanged_rerun["err"]
    assert "nothing to do" in unchanged_rerun["out"]
    assert "reused model version credit-default 1" in unchanged_rerun["out"]
    assert unchanged_rerun["new_logs"] == set()  # no pipeline was started
    assert sqlite_versions(sqlite_home) == [1]
    tip = first_run["branches"][STAGING_BRANCH]
    assert f"branch {STAGING_BRANCH} already holds credit-default v1 ({tip[:12]})" in unchanged_rerun["out"]
    assert promotion_branches(gitops_repo["path"]) == first_run["branches"]
    _assert_user_side_untouched(gitops_repo)


def test_promotion_is_skipped_with_a_note_where_it_cannot_apply(
    unchanged_rerun, sluice, tmp_path, sqlite_home, careful_csv, demo_slice
):
    """Registered is registered: no git repository, or one without the overlay, is a note, exit 0."""
    not_git = tmp_path / "plain"
    not_git.mkdir()
    result = sluice(*_args(sqlite_home, careful_csv, demo_slice, repo=not_git))
    assert result.code == 0, result.err
    assert f"not promoted: {not_git} is not inside a git repository" in result.out
    no_overlay = tmp_path / "other"
    no_overlay.mkdir()
    git(no_overlay, "init", "--quiet")
    (no_overlay / "README.md").write_text("not a GitOps repository\n")
    git(no_overlay, "add", "README.md")
    git(no_overlay, "commit", "--quiet", "-m", "init")
    result = sluice(*_args(sqlite_home, careful_csv, demo_slice, repo=no_overlay))
    assert result.code == 0, result.err
    assert "has no apps/credit-default/overlays/staging/kustomization.yaml at HEAD" in result.out
    assert promotion_branches(no_overlay) == {}
    assert result.err.strip() == ""


def test_repo_that_is_not_a_directory_is_a_usage_error(sluice, tmp_path, demo_slice):
    result = sluice(*_args(tmp_path, demo_slice.current, demo_slice, repo=tmp_path / "missing"))
    assert result.code == 2
    assert result.err_lines == [f"sluice: error: --repo is not a directory: {tmp_path / 'missing'}"]


@pytest.fixture(scope="module")
def rerun_without_record(
    request, unchanged_rerun, first_run, sqlite_home, careful_csv, demo_slice, gitops_repo
):
    """The fast-path record gone: the full pipeline runs, on cache, and registration is idempotent."""
    (sqlite_home / "runs" / f"{first_run['record']['run_key']}.json").unlink()
    args = _args(sqlite_home, careful_csv, demo_slice, repo=gitops_repo["path"])
    code, out, err = _run_module_scoped(request, *args)
    return {"code": code, "out": out, "err": err, "record": _record(sqlite_home)}


def test_rerun_without_record_uses_the_cache_and_reuses_the_version(
    rerun_without_record, first_run, sqlite_home, gitops_repo
):
    assert rerun_without_record["code"] == 0, rerun_without_record["out"] + rerun_without_record["err"]
    out = rerun_without_record["out"]
    assert "reused version 1" in out
    cached = [
        m.group(1) for line in out.splitlines() if (m := STEP_LINE.match(line)) and m.group(2) == "cached"
    ]
    assert sorted(cached) == sorted(["load", "split", "select"] + ["train+evaluate"] * 3)
    # Promotion is idempotent: the existing branch is reported, nothing new is committed.
    assert f"branch {STAGING_BRANCH} already holds credit-default v1" in out
    assert promotion_branches(gitops_repo["path"]) == first_run["branches"]
    _assert_user_side_untouched(gitops_repo)
    assert sqlite_versions(sqlite_home) == [1]
    record = rerun_without_record["record"]
    assert record["mlflow_run_id"] == first_run["record"]["mlflow_run_id"]  # the same MLflow run
    assert record["candidates"] == first_run["record"]["candidates"]


def test_failing_model_gate_registers_nothing_and_keeps_evidence(
    request, rerun_without_record, sqlite_home, careful_csv, demo_slice, gitops_repo, first_run
):
    args = _args(sqlite_home, careful_csv, demo_slice, STRICT_F1_POLICY, repo=gitops_repo["path"])
    code, out, err = _run_module_scoped(request, *args)
    assert code == 1, out + err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sluice: model gate failed: quality.f1"), err
    assert "nothing was registered" in out
    assert sqlite_versions(sqlite_home) == [1]
    record = _record(sqlite_home)
    client = MlflowClient(f"sqlite:///{sqlite_home / 'mlflow.db'}")
    run = client.get_run(record["mlflow_run_id"])
    assert run.data.tags["sluice.evidence_passed"] == "false"
    rejected = run.data.tags["sluice.evidence_artifact"]
    assert rejected.startswith("evidence/") and rejected.endswith("/model-evidence.json")
    assert rejected in {a.path for a in client.list_artifacts(run.info.run_id, str(Path(rejected).parent))}
    assert client.get_registered_model("credit-default").aliases == {"challenger": 1}
    assert run.data.tags["sluice.evidence_reason"].startswith("quality.f1")
    # ... and promotes nothing.
    assert "promot" not in out
    assert promotion_branches(gitops_repo["path"]) == first_run["branches"]
    _assert_user_side_untouched(gitops_repo)


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
    assert {a.path for a in client.list_artifacts(version.run_id, "data")} == {
        "data/holdout.parquet",
        "data/contract.yaml",
    }
    assert f"browse: {mlflow_server}" in postgres_run["out"]


def test_gate_model_cli_judges_a_version_the_pipeline_registered(
    sluice, postgres_run, mlflow_server, tmp_path
):
    """`sluice gate model` finds the holdout and contract where the pipeline logged them."""
    version = postgres_run["record"]["version"]
    out = tmp_path / "gate" / "model-evidence.json"
    result = sluice(
        "gate", "model", "--model", "credit-default", "--version", version,
        "--tracking-uri", mlflow_server, "--policy", LENIENT_POLICY, "--no-attach", "--out", out,
    )
    assert result.code == 0, result.out + result.err
    evidence = json.loads(out.read_text())
    assert evidence["passed"] is True
    assert evidence["subject"]["version"] == str(version)


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
    statuses = {m.group(1): m.group(2) for line in result.out.splitlines() if (m := STEP_LINE.match(line))}
    assert statuses["data gate"] == "no-op" and "record data gate" in statuses  # kept in MLflow too
    assert sqlite_versions(tmp_path) == []
    record = _record(tmp_path)
    assert record["outcome"] == "no-op"
    evidence = json.loads(next((tmp_path / "evidence").rglob("data-evidence.json")).read_text())
    assert evidence["passed"] is True and evidence["drift_detected"] is False
