"""Repository-wide hygiene: the linters the project promises to be clean under, and the README's
commands that CI runs word for word."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
# A PEM private key block with a body, as opposed to code that merely names the PEM type.
PEM_PRIVATE_KEY = re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=:\r\n-]{40,}-----END")


def test_ruff_is_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--quiet", str(REPO)], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_yamllint_is_clean() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", ".yamllint.yaml", "."],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert out.returncode == 0, out.stdout + out.stderr


def _readme_block(marker: str) -> str:
    text = (REPO / "README.md").read_text()
    after = text.split(f"<!-- {marker} -->", 1)
    assert len(after) == 2, f"README lacks the <!-- {marker} --> marker"
    block = re.search(r"```bash\n(.*?)\n```", after[1], re.S)
    assert block, f"no bash block after <!-- {marker} -->"
    return block.group(1).strip()


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run extracts the README's test command; prove the extraction yields that exact line."""
    expected = _readme_block("ci:test-command")
    script = (REPO / ".ci" / "run").read_text()
    extraction = re.search(r"test_cmd=\$\((.*)\)\n", script).group(1)
    got = subprocess.run(["bash", "-c", extraction], cwd=REPO, capture_output=True, text=True, check=True)
    assert got.stdout.strip() == expected
    assert "pytest" in expected


def test_readme_run_command_uses_the_console_script() -> None:
    assert "sluice run" in _readme_block("main-command")


@pytest.mark.skipif(shutil.which("git") is None, reason="git not installed")
def test_no_private_key_material_is_tracked() -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    offenders = []
    for name in filter(None, tracked.decode().split("\0")):
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        if PEM_PRIVATE_KEY.search(path.read_bytes()):
            offenders.append(name)
    assert offenders == []
