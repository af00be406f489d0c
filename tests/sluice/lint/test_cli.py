"""`sluice lint` as users and CI call it: output format, exit codes, --explain, the Tekton bridge."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.lint import tekton
from tests.sluice.lint.conftest import FIXTURES

FIX = "tests/sluice/lint/fixtures"  # as users type it, relative to the repository root


def sluice(repo_root: Path, lint_env: dict[str, str], *args: str, **env: str) -> subprocess.CompletedProcess:
    """`sluice lint ARGS` in a subprocess with the pinned schemas from the session's warm cache."""
    return subprocess.run(
        [sys.executable, "-m", "sluice", "lint", *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        env={**lint_env, **env},
    )


def test_clean_paths_exit_zero_with_a_summary(repo_root, pinned_lint_env):
    out = sluice(repo_root, pinned_lint_env, str(FIXTURES / "good"))
    assert out.returncode == 0, out.stdout + out.stderr
    last = out.stdout.strip().splitlines()[-1]
    assert last.startswith("sluice lint: 0 errors,") and "2 kustomizations rendered" in last


def test_problems_print_one_line_each_and_exit_one(repo_root, pinned_lint_env):
    out = sluice(
        repo_root,
        pinned_lint_env,
        f"{FIX}/broken/replicas-string.yaml",
        f"{FIX}/broken/duplicate-key.yaml",
    )
    assert out.returncode == 1
    assert out.stdout.splitlines()[:2] == [
        f"{FIX}/broken/duplicate-key.yaml:9: yaml-duplicate-key: duplicate key 'mode' "
        "(first defined on line 8)",
        f"{FIX}/broken/replicas-string.yaml:6: k8s-schema: spec.replicas: expected integer, "
        "got string 'three'",
    ]
    assert out.stdout.splitlines()[-1].startswith("sluice lint: 2 errors, 0 warnings")


def test_json_format_is_machine_readable(repo_root, pinned_lint_env):
    out = sluice(repo_root, pinned_lint_env, "--format", "json", f"{FIX}/broken/unknown-kind.yaml")
    assert out.returncode == 1
    doc = json.loads(out.stdout)
    assert doc["ok"] is False and doc["summary"]["errors"] == 1
    assert doc["problems"] == [
        {
            "path": f"{FIX}/broken/unknown-kind.yaml",
            "line": 2,
            "rule": "k8s-unknown-kind",
            "message": "kind Deploymnt is not defined in apps/v1",
            "severity": "error",
        }
    ]


def test_missing_path_is_a_usage_error(repo_root, pinned_lint_env):
    out = sluice(repo_root, pinned_lint_env, "no/such/dir")
    assert out.returncode == 2
    assert out.stderr.strip() == "sluice: error: lint: no such file or directory: no/such/dir"


def test_crds_flag_overrides_the_environment(repo_root, pinned_lint_env, tmp_path):
    out = sluice(
        repo_root,
        pinned_lint_env,
        "--crds",
        str(tmp_path / "none"),
        f"{FIX}/good/inferenceservice.yaml",
        SLUICE_CRDS_DIR=str(tmp_path / "elsewhere"),
    )
    assert out.returncode == 1
    assert "crd-missing" in out.stdout and str(tmp_path / "none") in out.stdout


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_a_crd_directory_replaces_the_pins(repo_root, crds_dir, tmp_path, how):
    """--crds DIR / $SLUICE_CRDS_DIR: a plain directory, no cache and no download (the cache is empty)."""
    env = {"SLUICE_CRD_CACHE": str(tmp_path / "empty-cache"), "SLUICE_CRD_MIRROR": "http://127.0.0.1:9/"}
    args = ["--offline", f"{FIX}/good/inferenceservice.yaml"]
    if how == "flag":
        args = ["--crds", str(crds_dir), *args]
    else:
        env["SLUICE_CRDS_DIR"] = str(crds_dir)
    out = sluice(repo_root, dict(os.environ), *args, **env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert not (tmp_path / "empty-cache").exists()


def test_explain_names_schemas_sources_and_how_to_fill_a_crd_dir(repo_root, pinned_lint_env):
    out = sluice(repo_root, pinned_lint_env, "--explain")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Kubernetes 1.32 strict schemas from kubernetes-validate 1.37.0" in text
    assert "Custom resources: pinned in sluice/lint/crd-pins.yaml" in text
    assert "kserve/inferenceservices.yaml: serving.kserve.io/v1beta1 InferenceService" in text
    assert "tektoncd/pipeline @ v1.15.0 (3ee1745ae5b2d9175b11917d7c1935eaad44910c)" in text
    assert "sha256 7d5659628e9abc63050f3d5718aeba20d10c94a9e30201f0a818b7b0609f0274  cached" in text
    assert "katib/swagger.json: kubeflow.org/v1beta1 Experiment (openapi-3 document, not a CRD)" in text
    assert "DataContract sluice.dev/v1: ml/data/contract.schema.json" in text
    assert "kubectl get crd" in text and "-o yaml > crds/cluster.yaml" in text
    assert (
        "curl --create-dirs -fsSLo crds/tekton-pipeline/task.yaml "
        "https://raw.githubusercontent.com/tektoncd/pipeline/v1.15.0/config/300-crds/300-task.yaml"
    ) in text


def test_explain_with_a_crd_directory_names_its_sources(repo_root, crds_dir):
    out = sluice(repo_root, dict(os.environ), "--explain", "--crds", str(crds_dir))
    assert out.returncode == 0, out.stderr
    assert "kserve/inferenceservices.yaml: InferenceService serving.kserve.io/v1beta1" in out.stdout
    assert "tektoncd/pipeline @ 3ee1745ae5b2d9175b11917d7c1935eaad44910c" in out.stdout


def test_tekton_lint_absence_is_a_warning_not_an_error(repo_root, pinned_lint_env):
    out = sluice(repo_root, pinned_lint_env, f"{FIX}/good/task.yaml", SLUICE_TEKTON_LINT="/nonexistent")
    assert out.returncode == 0
    assert (
        f"{FIX}/good/task.yaml:1: tekton-lint: tekton-lint not installed "
        "(npm install @ibm/tekton-lint); Tekton files not linted [warning]"
    ) in out.stdout


def test_tekton_lint_findings_are_reported_when_it_is_installed(repo_root, pinned_lint_env):
    exe = tekton.tekton_lint_executable(repo_root)
    if exe is None:
        pytest.skip("tekton-lint not installed (npm install @ibm/tekton-lint, or set SLUICE_TEKTON_LINT)")
    out = sluice(
        repo_root, pinned_lint_env, f"{FIX}/broken/tekton/undefined-param.yaml", SLUICE_TEKTON_LINT=exe
    )
    assert out.returncode == 1
    assert (
        f"{FIX}/broken/tekton/undefined-param.yaml:13: tekton-lint:no-undefined-param: "
        "Undefined param 'whom'"
    ) in out.stdout


def test_tekton_cross_reference_rule_reports_through_lint():
    """The bridge hands Tekton documents to sluice/lint/tekton_refs.py and passes its Problems on."""
    from sluice.lint.yamlload import read_yaml_file

    path = f"{FIX}/broken/tekton/undefined-param.yaml"
    docs, _ = read_yaml_file(FIXTURES / "broken" / "tekton" / "undefined-param.yaml", path)
    problems = tekton.cross_references([(path, d.line, d.data) for d in docs])
    assert [p for p in problems if p.rule == "tekton-refs"] == []  # no bridge failure
    assert any(p.path == path and p.rule.startswith("tekton-") and "whom" in p.message for p in problems)


def test_tekton_cross_reference_rule_is_reported_unavailable_when_missing(monkeypatch):
    resources = [("tekton/t.yaml", 3, {"apiVersion": "tekton.dev/v1", "kind": "Task"})]
    monkeypatch.setitem(sys.modules, "sluice.lint.tekton_refs", None)  # as if the module did not exist
    (missing,) = tekton.cross_references(resources)
    assert (missing.path, missing.line, missing.rule, missing.severity) == (
        "tekton/t.yaml",
        3,
        "tekton-refs",
        "warning",
    )
    assert tekton.cross_references([]) == []
