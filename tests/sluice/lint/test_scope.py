"""What a whole-repository lint looks at, and what it deliberately leaves alone."""

from __future__ import annotations

from pathlib import Path

from sluice.lint.engine import run

CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: safe\n"


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


# Neither tree holds a custom resource, so no CRD directory is needed (and none exists).
def test_whole_repository_scope(tmp_path: Path):
    _write(tmp_path, "apps/demo/kustomization.yaml", "resources:\n  - configmap.yaml\n")
    _write(tmp_path, "apps/demo/configmap.yaml", CONFIGMAP)
    _write(tmp_path, "apps/demo/notes.yaml", "owner: team-ml\n")
    _write(tmp_path, ".github/workflows/ci.yaml", "on:\n  push: {}\njobs: {}\n")
    _write(tmp_path, "ml/pipelines/training.yaml", "pipelineInfo: {name: t}\nroot: {}\ndeploymentSpec: {}\n")
    _write(tmp_path, ".yamllint.yaml", "extends: default\n")
    # Never linted in a whole-repository run: tests (fixtures are linted by path), tools' folders.
    for skipped in ("tests/fixtures/broken.yaml", "node_modules/pkg/bad.yaml", ".sluice/run.yaml"):
        _write(tmp_path, skipped, "a: [\n")

    report = run([], tmp_path, tmp_path / "no-crds")

    assert [(p.path, p.line, p.rule, p.severity) for p in report.problems] == [
        ("apps/demo/notes.yaml", 1, "k8s-not-an-object", "warning"),
    ]
    assert report.stats["kustomizations_rendered"] == 1
    assert report.stats["objects"] == 1  # the ConfigMap; CI, tool and KFP IR files are parsed only
    assert report.schemas_used == {"kubernetes": ["ConfigMap v1"]}


def test_a_broken_file_in_scope_is_found(tmp_path: Path):
    _write(tmp_path, "policies/broken.yaml", "a: [\n")
    _write(tmp_path, ".github/workflows/ci.yaml", "on: push\non: pull_request\n")
    report = run([], tmp_path, tmp_path / "no-crds")
    assert sorted((p.path, p.rule) for p in report.errors) == [
        (".github/workflows/ci.yaml", "yaml-duplicate-key"),
        ("policies/broken.yaml", "yaml-syntax"),
    ]
