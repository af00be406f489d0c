"""`sluice features`: exit codes and one-line errors (the real CLI, in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def sluice(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", "features", *args], capture_output=True, text=True, timeout=300
    )


@pytest.mark.slow
def test_apply_with_a_missing_source_exits_2_naming_the_file(tmp_path: Path):
    out = sluice("apply", "--home", str(tmp_path / "home"), "--sources", str(tmp_path / "nowhere"))
    assert out.returncode == 2, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("sluice:")]
    assert errors == [
        f"sluice: error: feature view applicant_profile: source file not found: "
        f"{tmp_path / 'nowhere' / 'applicant_profile.parquet'}"
    ]
    assert not (tmp_path / "home" / "features" / "registry.db").exists()


@pytest.mark.slow
def test_plan_with_exit_code_refuses_pending_changes_then_apply_settles_them(tmp_path: Path):
    home = str(tmp_path / "home")
    pending = sluice("plan", "--home", home, "--exit-code")
    assert pending.returncode == 1, pending.stderr
    assert "Created feature view applicant_profile" in pending.stdout
    assert sluice("apply", "--home", home).returncode == 0
    settled = sluice("plan", "--home", home, "--exit-code")
    assert settled.returncode == 0 and "no changes to the registry" in settled.stdout
