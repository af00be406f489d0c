"""Tests that need the upstream reference data (../shared) fail in CI without it, and skip elsewhere
saying why; the pinned schemas also come from a warm user cache, so those tests run without it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NEEDS_SHARED = "tests/sluice/lint/test_pins.py::test_every_shared_crd_file_is_pinned_with_its_real_sha256"
NEEDS_PINNED = "tests/sluice/lint/test_pins.py::test_every_kind_the_repository_uses_is_pinned"


def pytest_without_shared(test: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run one test in a fresh pytest whose ../shared is missing and whose schema cache is empty."""
    drop = ("CI", "SLUICE_SHARED_DIR", "SLUICE_CRD_CACHE", "SLUICE_CRD_MIRROR", "SLUICE_CRDS_DIR")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    base.update(SLUICE_SHARED_DIR=str(tmp_path / "no-shared"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", test],
        cwd=REPO, capture_output=True, text=True, timeout=300, env={**base, **env},
    )


def test_in_ci_a_test_that_needs_shared_fails_with_the_reason(tmp_path: Path) -> None:
    out = pytest_without_shared(NEEDS_SHARED, tmp_path, CI="true")
    assert out.returncode == 1, out.stdout
    assert "1 error" in out.stdout
    assert f"CI=true but shared upstream data not found at {tmp_path / 'no-shared'}" in out.stdout


def test_elsewhere_it_skips_saying_why(tmp_path: Path) -> None:
    out = pytest_without_shared(NEEDS_SHARED, tmp_path)
    assert out.returncode == 0, out.stdout
    assert "1 skipped" in out.stdout
    assert f"shared upstream data not found at {tmp_path / 'no-shared'} (set SLUICE_SHARED_DIR" in out.stdout


def test_pinned_schemas_from_a_warm_cache_need_no_shared_even_in_ci(tmp_path: Path, pinned_crds) -> None:
    warm = str(pinned_crds.directory)
    out = pytest_without_shared(NEEDS_PINNED, tmp_path, CI="true", SLUICE_CRD_CACHE=warm)
    assert out.returncode == 0 and "1 passed" in out.stdout, out.stdout


@pytest.mark.parametrize("ci", ["true", ""])
def test_an_empty_cache_without_shared_is_named_too(tmp_path: Path, ci: str) -> None:
    out = pytest_without_shared(NEEDS_PINNED, tmp_path, CI=ci)
    assert out.returncode == (1 if ci else 0), out.stdout
    assert "upstream CRD schemas (and no warm schema cache for the pinned ones) not found" in out.stdout
