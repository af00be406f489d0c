"""Tasks run the built images: no step installs packages at run time, the steps that run sluice run the
trainer image built and signed in the same PipelineRun (or the ci image, pinned or built), and the
lint rule that enforces it refuses each way of breaking that (each test breaks one thing in a copy)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from sluice.lint.images import image_findings
from sluice.lint.tekton_refs import check_tekton_refs
from tests.manifests.tekton.resources import REPO, by_kind_name, mutable_copy, pipeline_task, steps

BUILT = "$(tasks.{0}.results.IMAGE_URL)@$(tasks.{0}.results.IMAGE_DIGEST)"
SLUICE_TASKS = {"train": "trainer-image", "gate": "trainer-image", "promote": "trainer-image",
                "open-pr": "trainer-image", "lint": "ci-image", "test": "ci-image", "finalize": "ci-image"}


def test_git_grep_finds_no_package_install_under_tekton() -> None:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    command = ["git", "grep", "-nE", 'pip[0-9]*"? +install', "--", "tekton/"]
    out = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "", out.stdout  # 1: no match


def test_every_step_that_runs_sluice_runs_an_image_param_without_default(resources) -> None:
    for task, step, spec in steps(resources):
        runs_sluice = re.search(r"\bsluice\b|pytest", spec.get("script", ""))
        if task in SLUICE_TASKS and runs_sluice:
            assert spec["image"] == f"$(params.{SLUICE_TASKS[task]})", f"{task}/{step}"
            params = {p["name"]: p for p in by_kind_name(resources, "Task", task)["spec"]["params"]}
            assert "default" not in params[SLUICE_TASKS[task]], task  # the caller must say which image


def test_deliver_passes_the_images_it_built_and_signed(resources) -> None:
    deliver = by_kind_name(resources, "Pipeline", "sluice-deliver")
    for name, build in [("lint", "build-ci"), ("test", "build-ci"), ("train", "build-trainer"),
                        ("gate", "build-trainer"), ("promote-staging", "build-trainer"),
                        ("open-production-pr", "build-trainer")]:
        params = {p["name"]: p["value"] for p in pipeline_task(deliver, name)["params"]}
        image_param = "ci-image" if build == "build-ci" else "trainer-image"
        assert params[image_param] == BUILT.format(build), name
    targets = {
        t["name"]: {p["name"]: p["value"] for p in t["params"]}["target"]
        for t in deliver["spec"]["tasks"]
        if t["taskRef"]["name"] == "build-image"
    }
    assert targets == {"build-ci": "ci", "build-trainer": "trainer", "build-serving": "serving"}
    results = {r["name"]: r["value"] for r in deliver["spec"]["results"]}
    assert results["ci-image"] == BUILT.format("build-ci")  # what operators pin for check and finalize


def test_check_and_finalize_take_the_ci_image_from_the_cluster(resources) -> None:
    for pipeline in ("sluice-check", "sluice-finalize"):
        params = {p["name"]: p for p in by_kind_name(resources, "Pipeline", pipeline)["spec"]["params"]}
        assert "default" not in params["ci-image"], pipeline
    listener = by_kind_name(resources, "EventListener", "sluice-github")
    annotation = listener["metadata"]["annotations"]["sluice.dev/cluster-trigger-bindings"]
    assert annotation == "sluice-ci-image=ci-image"
    for trigger in listener["spec"]["triggers"]:
        refs = {b["ref"] for b in trigger["bindings"]}
        needs_ci_image = trigger["template"]["ref"] != "sluice-deliver"  # deliver builds its own
        assert ("sluice-ci-image" in refs) == needs_ci_image, trigger["name"]


def test_the_build_task_labels_the_lock_it_builds_from(resources) -> None:
    task = by_kind_name(resources, "Task", "build-image")
    params = {p["name"]: p for p in task["spec"]["params"]}
    assert params["lock-file"]["default"] == "requirements.lock"
    script = task["spec"]["steps"][0]["script"]
    assert '--build-arg=LOCK_SHA256=$(sha256sum "${PARAM_LOCK_FILE}" | cut -d\' \' -f1)' in script
    assert '--target="${PARAM_TARGET}"' in script


def test_ci_runs_with_ci_true_and_the_upstream_data(resources) -> None:
    step = by_kind_name(resources, "Task", "test")["spec"]["steps"][0]
    env = {e["name"]: e["value"] for e in step["env"]}
    assert env["CI"] == "true" and env["SLUICE_SHARED_DIR"] == "$(workspaces.upstream-data.path)"
    assert env["PYTHONPATH"] == "$(workspaces.source.path)"  # the checkout's code, not a baked copy


# --- the rule refuses each way of breaking it ---------------------------------------------------------


@pytest.fixture
def broken(resources):
    return mutable_copy(resources)


def rules_for(problems, rule: str) -> list[str]:
    found = [p.message for p in problems if p.rule == rule]
    assert found, f"expected a {rule} problem, got {[p.render() for p in problems]}"
    return found


def test_a_pip_install_in_a_step_is_refused(broken) -> None:
    step = by_kind_name(broken, "Task", "promote")["spec"]["steps"][0]
    step["script"] = step["script"].replace("set -eu\n", 'set -eu\npython -m pip install --quiet ".[lint]"\n')
    assert "Task promote step promote-and-push installs packages" in rules_for(
        check_tekton_refs(broken), "tekton-runtime-install"
    )[0]


@pytest.mark.parametrize(
    "command", ["python3 -m venv /tmp/v", "npm ci", "uv pip install x", "apt-get install -y jq"]
)
def test_other_installers_are_refused_too(broken, command: str) -> None:
    step = by_kind_name(broken, "Task", "lint")["spec"]["steps"][0]
    step["script"] += f"{command}\n"
    rules_for(check_tekton_refs(broken), "tekton-runtime-install")


def test_a_step_image_built_from_a_substitution_is_refused(broken) -> None:
    step = by_kind_name(broken, "Task", "gate")["spec"]["steps"][0]
    step["image"] = "$(params.trainer-image)-cuda"
    assert "'$(params.trainer-image)-cuda' is neither pinned" in rules_for(
        check_tekton_refs(broken), "tekton-step-image"
    )[0]


def test_a_tagged_image_or_unpinned_default_is_the_image_digest_rules_finding(broken) -> None:
    task = by_kind_name(broken, "Task", "lint")
    next(p for p in task["spec"]["params"] if p["name"] == "ci-image")["default"] = "python:3.11"
    task["spec"]["steps"][0]["image"] = "docker.io/library/python:3.11"
    assert len(image_findings(task)) == 1 and "python:3.11" in image_findings(task)[0].message
    task["spec"]["steps"][0]["image"] = "$(params.ci-image)"
    assert "(default 'python:3.11')" in image_findings(task)[0].message
    assert [p for p in check_tekton_refs(broken) if p.rule == "tekton-step-image"] == []  # not twice


def test_a_pipeline_passing_an_unpinned_image_is_refused(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "train")
    for param in task["params"]:
        if param["name"] == "trainer-image":
            param["value"] = "$(tasks.build-trainer.results.IMAGE_URL):latest"
    assert "passes trainer-image=" in rules_for(check_tekton_refs(broken), "tekton-step-image")[0]


def test_a_pipeline_param_default_that_is_not_pinned_is_refused(broken) -> None:
    check = by_kind_name(broken, "Pipeline", "sluice-check")
    next(p for p in check["spec"]["params"] if p["name"] == "ci-image")["default"] = "ghcr.io/x/ci:main"
    found = rules_for(check_tekton_refs(broken), "tekton-step-image")
    assert "passes ci-image='$(params.ci-image)'" in found[0]


def test_a_trigger_template_passing_an_unpinned_literal_is_refused(broken) -> None:
    template = by_kind_name(broken, "TriggerTemplate", "sluice-finalize")
    run = template["spec"]["resourcetemplates"][0]
    next(p for p in run["spec"]["params"] if p["name"] == "ci-image")["value"] = "ghcr.io/x/ci:main"
    assert "ci-image='ghcr.io/x/ci:main'" in rules_for(check_tekton_refs(broken), "tekton-step-image")[0]


def test_an_undeclared_cluster_binding_is_a_broken_reference(broken) -> None:
    listener = by_kind_name(broken, "EventListener", "sluice-github")
    del listener["metadata"]["annotations"]["sluice.dev/cluster-trigger-bindings"]
    messages = rules_for(check_tekton_refs(broken), "tekton-trigger-ref")
    assert all("'sluice-ci-image', which is not defined" in m for m in messages) and len(messages) == 2


def test_a_cluster_binding_supplies_only_what_it_declares(broken) -> None:
    listener = by_kind_name(broken, "EventListener", "sluice-github")
    listener["metadata"]["annotations"]["sluice.dev/cluster-trigger-bindings"] = "sluice-ci-image=ci"
    assert "'ci-image'" in rules_for(check_tekton_refs(broken), "tekton-missing-param")[0]
