"""The finalize path after a production merge: the pipeline's shape, and the finalize step's own
script run as written in the Task — with the real `sluice` — against a real MLflow server
(PostgreSQL), a real bare git remote, production pull requests opened by `sluice promote` and
merged with git. Only Tekton is absent: the step runs in a clone at the pushed commit, as
git-clone leaves it, with `sluice` on PATH being this environment's installed `sluice` instead of
the ci image's launcher (both run the checkout's sluice package)."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from sluice.promotion.signatures import key_trust, signature_verifier
from tests.conftest import git
from tests.manifests.tekton.resources import by_kind_name, pipeline_task
from tests.sluice.promotion.conftest import Registry, _register, evidence_document, make_gitops_repo
from tests.sluice.promotion.test_promote import do_promote, merge_into_main


def test_finalize_runs_on_a_full_clone_of_the_pushed_commit(resources) -> None:
    pipeline = by_kind_name(resources, "Pipeline", "sluice-finalize")
    clone = {p["name"]: p["value"] for p in pipeline_task(pipeline, "fetch-source")["params"]}
    assert clone["depth"] == "0", "git diff before..after needs the history back to `before`"
    params = {p["name"]: p["value"] for p in pipeline_task(pipeline, "finalize")["params"]}
    assert params["after"] == "$(tasks.fetch-source.results.commit)"
    assert params["before"] == "$(params.before)"
    assert [t["name"] for t in pipeline["spec"]["tasks"]] == ["fetch-source", "finalize"]


def step_script(resources) -> str:
    task = by_kind_name(resources, "Task", "finalize")
    (step,) = [s for s in task["spec"]["steps"] if s["name"] == "finalize"]
    assert {e["name"] for e in step["env"]} == {"BEFORE", "AFTER", "TARGET_BRANCH", "MLFLOW_TRACKING_URI"}
    return step["script"]


def run_step(script: str, checkout: Path, home: Path, before: str, after: str, tracking: str):
    env = {
        **os.environ,
        "HOME": str(home),
        "BEFORE": before,
        "AFTER": after,
        "TARGET_BRANCH": "main",
        "MLFLOW_TRACKING_URI": tracking,
    }
    return subprocess.run(
        ["bash", "-c", script], cwd=checkout, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture
def sluice_home(tmp_path: Path) -> Path:
    if shutil.which("sluice") is None:
        pytest.skip("the sluice console script is not installed (pip install -e .)")
    home = tmp_path / "home"
    home.mkdir()
    return home


@pytest.mark.slow
def test_the_finalize_step_moves_champion_for_exactly_the_changed_models(
    resources, tmp_path, mlflow_server, signed_images, sluice_home
) -> None:
    import mlflow
    from mlflow import MlflowClient

    tag = uuid.uuid4().hex[:6]
    a, b, c = (f"fz{x}-{tag}" for x in "abc")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(f"finalize-tests-{tag}")
    client = MlflowClient(mlflow_server)
    try:
        versions = {m: _register(client, mlflow, m, evidence_document(m), "true", False) for m in (a, b, c)}
    finally:
        mlflow.set_tracking_uri(previous)
    reg = Registry(url=mlflow_server, a=a, b=b, versions={m: {"good1": v} for m, v in versions.items()})
    gitops = make_gitops_repo(tmp_path, [a, b, c])
    verify = signature_verifier("production", key_trust(signed_images.key_pem), allow_insecure_loopback=True)

    def to_production(model: str) -> None:
        result = do_promote(
            gitops, reg, tmp_path, model, "good1", env="production", image=signed_images.signed, verify=verify
        )
        merge_into_main(gitops, tmp_path, result.branch)

    to_production(c)  # before the push under test
    before = gitops.remote_sha()
    to_production(a)
    to_production(b)
    do_promote(gitops, reg, tmp_path, c, "good1")  # c's staging overlay changes in the same push
    after = gitops.remote_sha()
    assert before and after and before != after

    checkout = tmp_path / "checkout"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(checkout))
    git(checkout, "checkout", "--quiet", "--detach", after)
    script = step_script(resources)

    # a's registry record says its evidence failed: a is refused, and b, after it, still finalized.
    client.set_model_version_tag(a, versions[a].number, "sluice.evidence_passed", "false")
    first = run_step(script, checkout, sluice_home, before, after, mlflow_server)
    assert first.returncode == 1, first.stdout + first.stderr
    assert first.stdout.splitlines()[:2] == [
        f"production overlay changed: {a}",
        f"production overlay changed: {b}",
    ]
    assert f"finalized {b}: production on main holds v{versions[b].number}" in first.stdout
    assert first.stderr.strip().splitlines()[-1] == f"sluice promote --finalize failed for: {a}"
    assert client.get_registered_model(b).aliases == {"champion": versions[b].number}
    assert "champion" not in client.get_registered_model(a).aliases

    client.set_model_version_tag(a, versions[a].number, "sluice.evidence_passed", "true")
    second = run_step(script, checkout, sluice_home, before, after, mlflow_server)
    assert second.returncode == 0, second.stdout + second.stderr
    assert f"champion of {b} is already v{versions[b].number}" in second.stdout  # a rerun is harmless
    assert client.get_registered_model(a).aliases == {"champion": versions[a].number}
    assert client.get_registered_model(c).aliases == {}, "c's production overlay did not change"
    assert c not in first.stdout + second.stdout


def test_a_push_without_production_changes_finalizes_nothing(resources, tmp_path, sluice_home) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    overlay = repo / "apps" / "m" / "overlays" / "staging" / "model-version.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("a: 1\n")
    git(repo, "add", "-A")
    git(repo, "commit", "--quiet", "-m", "one")
    before = git(repo, "rev-parse", "HEAD")
    overlay.write_text("a: 2\n")
    git(repo, "commit", "--quiet", "-am", "two")
    result = run_step(step_script(resources), repo, sluice_home, before, git(repo, "rev-parse", "HEAD"), "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "production overlay changed: none\n"


def test_an_unknown_before_commit_fails_the_step(resources, tmp_path, sluice_home) -> None:
    """A force push can name a `before` the clone never had: fail loudly, finalize nothing."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "--quiet", "-b", "main")
    git(repo, "commit", "--quiet", "--allow-empty", "-m", "one")
    after = git(repo, "rev-parse", "HEAD")
    result = run_step(step_script(resources), repo, sluice_home, "f" * 40, after, "x")
    assert result.returncode != 0
    assert "bad object" in result.stderr or "bad revision" in result.stderr, result.stderr
    assert "production overlay changed" not in result.stdout
