"""IBM's tekton-lint (npm @ibm/tekton-lint, pinned in package.json) reports nothing on tekton/,
and does report a broken copy, so a silent tool cannot pass for a clean folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from sluice.lint.tekton import tekton_lint_executable
from tests.manifests.tekton.resources import REPO


def _tekton_lint(cwd: Path) -> subprocess.CompletedProcess:
    exe = tekton_lint_executable(REPO)
    if exe is None:
        pytest.skip(
            "tekton-lint not installed: run `npm ci` at the repository root (or set SLUICE_TEKTON_LINT)"
        )
    # The globs and rule settings come from .tektonlintrc.yaml in cwd.
    return subprocess.run(
        [exe, "--format", "json", "--color", "false", "--max-warnings", "0", "--config", str(cwd)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _copy(tmp_path: Path) -> Path:
    shutil.copytree(REPO / "tekton", tmp_path / "tekton")
    shutil.copy(REPO / ".tektonlintrc.yaml", tmp_path / ".tektonlintrc.yaml")
    return tmp_path


def test_tekton_lint_reports_nothing(tmp_path: Path) -> None:
    result = _tekton_lint(_copy(tmp_path))
    assert json.loads(result.stdout) == [], result.stdout + result.stderr
    assert result.returncode == 0, result.stderr


def test_tekton_lint_reports_a_missing_param(tmp_path: Path) -> None:
    root = _copy(tmp_path)
    check = root / "tekton" / "pipelines" / "check.yaml"
    check.write_text(check.read_text().replace("        - name: url\n", "        - name: uri\n", 1))
    result = _tekton_lint(root)
    rules = {entry["rule"] for entry in json.loads(result.stdout)}
    assert "no-missing-param" in rules, result.stdout
    assert result.returncode != 0
