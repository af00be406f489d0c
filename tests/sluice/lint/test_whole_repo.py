"""The deliverable: `sluice lint` on the real repository is clean.

This fails while parts of the repository are still being written; the failure message lists
exactly what is left to fix, one `path:line: rule: message` per line.
"""

from __future__ import annotations

import os
import subprocess
import sys


def test_sluice_lint_passes_on_the_repository(repo_root, crds_dir):
    out = subprocess.run(
        [sys.executable, "-m", "sluice", "lint"],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "SLUICE_CRDS_DIR": str(crds_dir)},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    summary = out.stdout.strip().splitlines()[-1]
    assert summary.startswith("sluice lint: 0 errors")
