"""The laptop loop's last step: `promote_to_local_branch` commits onto `promote/<model>/staging-v<N>`
without touching the working tree, the index or the current branch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sluice.errors import Refused
from sluice.promotion import overlay
from sluice.promotion.local import promote_to_local_branch
from sluice.promotion.result import PromotionResult
from tests.conftest import git, wait_until

pytestmark = pytest.mark.slow


def test_commits_onto_a_local_branch_leaving_the_work_tree_alone(gitops, registry, tmp_path):
    user = gitops.user
    (user / "README.md").write_text("an uncommitted edit the promotion must not see or touch\n")
    (user / "scratch.txt").write_text("untracked\n")
    git(user, "add", "scratch.txt")  # something staged, too
    before = gitops.user_snapshot()
    version = registry.v(registry.a, "good1")

    result = promote_to_local_branch(
        user, registry.a, version, tracking_uri=registry.url, home=tmp_path / "home", warn=lambda _m: None
    )

    assert isinstance(result, PromotionResult)
    branch = f"promote/{registry.a}/staging-v{version}"
    assert result.branch == branch and result.changed and not result.pushed
    assert gitops.user_snapshot()[:3] == before[:3]  # HEAD, current branch, status (incl. staged file)
    assert git(user, "rev-parse", branch) == result.commit
    assert git(user, "rev-parse", f"{branch}^") == before[0]  # built on HEAD
    assert git(user, "ls-remote", "--heads", "origin", branch) == ""  # nothing pushed anywhere
    text = git(user, "show", f"{branch}:{overlay.relative_overlay_file(registry.a, 'staging')}")
    assert overlay.parse(text, "branch").version == version
    assert "storageUri" in result.diff and f"sluice.dev/model-version: '{version}'" in result.diff
    assert any(line.startswith("storageUri: s3://") for line in result.model_lines)
    assert any("ServingRuntime/sluice-mlflow" in line and "@sha256:" in line for line in result.image_lines)
    assert result.report_path is not None and result.report_path.name == "model-evidence.html"
    assert result.report_path.is_file() and str(tmp_path / "home") in str(result.report_path)

    again = promote_to_local_branch(
        user, registry.a, version, tracking_uri=registry.url, home=tmp_path / "home", warn=lambda _m: None
    )
    assert again.commit == result.commit and "already holds" in again.message


def test_a_failing_gate_makes_no_branch(gitops, registry, tmp_path):
    version = registry.v(registry.a, "failed")
    with pytest.raises(Refused, match="failed its gate"):
        promote_to_local_branch(
            gitops.user, registry.a, version, tracking_uri=registry.url, home=tmp_path / "h"
        )
    assert git(gitops.user, "branch", "--list", "promote/*") == ""


def test_a_kill_before_the_branch_is_written_leaves_no_trace(gitops, registry, tmp_path):
    before = gitops.user_snapshot()
    pause = tmp_path / "pause"
    pause.mkdir()
    script = textwrap.dedent(f"""
        from sluice.promotion.local import promote_to_local_branch
        promote_to_local_branch({str(gitops.user)!r}, {registry.a!r}, {registry.v(registry.a, "good1")!r},
                                tracking_uri={registry.url!r}, home={str(tmp_path / "home")!r})
    """)
    env = dict(os.environ, SLUICE_TEST_PAUSE_AT="after-commit", SLUICE_TEST_PAUSE_DIR=str(pause),
               TMPDIR=str(tmp_path))  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    marker = pause / f"{proc.pid}.after-commit.reached"
    wait_until(marker.exists, "promotion reaching after-commit", timeout=120, proc=proc)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    assert gitops.user_snapshot() == before  # no branch, no index or work-tree change
    git(gitops.user, "fsck", "--no-progress")
