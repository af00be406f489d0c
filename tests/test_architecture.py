"""Imports go one way, and the contract that says so is enforced by import-linter's own CLI.

The contract lives in pyproject.toml ([tool.importlinter]). Besides checking the repository, the
tests plant a violation in a copy of the packages and show `lint-imports` refusing it: a contract
that never fails would prove nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

PACKAGES = ("sluice", "ml", "gates")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent), "NO_COLOR": "1"}
    return subprocess.run(
        [exe, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    """The three packages' Python sources and the contract, where a test may break them."""
    for package in PACKAGES:
        shutil.copytree(REPO_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_repository_keeps_its_import_contract() -> None:
    out = lint_imports(REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 kept, 0 broken" in out.stdout


@pytest.mark.parametrize(
    ("module", "planted"),
    [
        ("gates/data_gate.py", "import sluice.cli"),
        ("ml/runners/local.py", "from sluice.promotion import promote"),
        ("ml/data/contract.py", "import gates.model_gate"),
    ],
    ids=["gates-imports-cli", "ml-imports-promotion", "data-imports-gates"],
)
def test_a_planted_backward_import_breaks_the_contract(package_copy: Path, module: str, planted: str) -> None:
    target = package_copy / module
    target.write_text(target.read_text() + f"\n{planted}  # planted by the test\n")
    out = lint_imports(package_copy)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "0 kept, 1 broken" in out.stdout
    importer = module.removesuffix(".py").replace("/", ".")
    assert importer in out.stdout, out.stdout
