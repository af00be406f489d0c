"""Real `sluice promote` processes racing on one remote, and killed in the middle of a promotion.

Processes stop at named checkpoints (sluice/promotion/hooks.py) and the test releases or kills them
there: the race is forced (both have committed on the same tip before either pushes) and each kill
provably lands inside the step under test. No sleeps: every wait polls a condition with a deadline.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice.promotion import overlay
from sluice.promotion.promote import PromoteOptions, promote
from sluice.promotion.signatures import signature_verifier
from tests.conftest import git, wait_until
from tests.sluice.promotion.conftest import GitOpsRepo, Registry

pytestmark = pytest.mark.slow

DEADLINE_S = 120


def start(
    repo: Path,
    reg: Registry,
    model: str,
    label: str,
    tmp: Path,
    pause: str | None,
    *extra: str,
    env: str = "staging",
) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "sluice", "promote", "--model", model, "--version", reg.v(model, label),
        "--env", env, "--repo", str(repo), "--tracking-uri", reg.url, "--home", str(tmp / "home"), *extra,
    ]  # fmt: skip
    child_env = dict(os.environ, TMPDIR=str(tmp / "proc-tmp"), SLUICE_TEST_PAUSE_DIR=str(tmp / "pause"))
    (tmp / "proc-tmp").mkdir(exist_ok=True)
    (tmp / "pause").mkdir(exist_ok=True)
    child_env.pop("SLUICE_TEST_PAUSE_AT", None)
    if pause:
        child_env["SLUICE_TEST_PAUSE_AT"] = pause
    return subprocess.Popen(cmd, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def reached(tmp: Path, proc: subprocess.Popen, point: str) -> Path:
    """Wait until `proc` blocks at `point`; the FIFO that releases it."""
    marker = tmp / "pause" / f"{proc.pid}.{point}.reached"
    try:
        wait_until(marker.exists, f"process {proc.pid} reaching {point}", timeout=DEADLINE_S, proc=proc)
    except RuntimeError:
        out, err = proc.communicate(timeout=10)
        raise AssertionError(f"never reached {point}: {out}\n{err}") from None
    return tmp / "pause" / f"{proc.pid}.{point}.go"


def release(*fifos: Path) -> None:
    """Open every FIFO first (the barrier), then let all processes go at once."""
    fds = []
    deadline = time.monotonic() + DEADLINE_S
    for fifo in fifos:
        while True:
            try:
                fds.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                break
            except OSError as exc:  # ENXIO: the reader has not opened its end yet
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    for fd in fds:
        os.write(fd, b"go\n")
        os.close(fd)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=DEADLINE_S)
    return proc.returncode, out + err


def promote_commits(gitops: GitOpsRepo) -> list[str]:
    return [s for s in gitops.remote_log() if s.startswith("promote(")]


def test_two_promotions_racing_on_one_remote_both_land(gitops, registry, tmp_path):
    second = tmp_path / "second-clone"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(second))
    base = gitops.remote_sha()
    one = start(gitops.user, registry, registry.a, "good1", tmp_path, "before-push")
    two = start(second, registry, registry.b, "good1", tmp_path, "before-push")
    release(reached(tmp_path, one, "before-push"), reached(tmp_path, two, "before-push"))
    (code_one, out_one), (code_two, out_two) = finish(one), finish(two)

    assert (code_one, code_two) == (0, 0), out_one + out_two
    assert [("after 2 attempts" in out) for out in (out_one, out_two)].count(True) == 1  # one lost, retried
    assert git(gitops.remote, "rev-list", "--count", f"{base}..main") == "2"
    assert git(gitops.remote, "rev-list", "--merges", "main") == ""  # re-applied on the tip, no merge
    for model in (registry.a, registry.b):  # no update lost
        text = gitops.remote_file(overlay.relative_overlay_file(model, "staging"))
        assert overlay.parse(text, model).version == registry.v(model, "good1")


def test_racing_promotions_of_the_same_version_commit_once(gitops, registry, tmp_path):
    second = tmp_path / "second-clone"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(second))
    one = start(gitops.user, registry, registry.a, "good2", tmp_path, "before-push")
    two = start(second, registry, registry.a, "good2", tmp_path, "before-push")
    release(reached(tmp_path, one, "before-push"), reached(tmp_path, two, "before-push"))
    (code_one, out_one), (code_two, out_two) = finish(one), finish(two)
    assert (code_one, code_two) == (0, 0), out_one + out_two
    assert [("already holds" in out) for out in (out_one, out_two)].count(True) == 1
    assert len(promote_commits(gitops)) == 1


@pytest.mark.parametrize("point", ["after-write", "after-render", "after-commit", "after-push"])
def test_a_kill_mid_promotion_leaves_repo_and_remote_consistent(gitops, registry, tmp_path, point):
    before_user = gitops.user_snapshot()
    base = gitops.remote_sha()
    proc = start(gitops.user, registry, registry.a, "good1", tmp_path, point)
    reached(tmp_path, proc, point)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=DEADLINE_S) == -signal.SIGKILL

    assert gitops.user_snapshot() == before_user
    git(gitops.user, "fsck", "--no-progress")
    git(gitops.remote, "fsck", "--no-progress")
    pushed = point == "after-push"
    assert (gitops.remote_sha() != base) is pushed  # the push is the one atomic step
    # Whatever the kill left behind is a temp clone under TMPDIR, nowhere near the user's repo.
    assert not (gitops.user / ".git" / "worktrees").exists()

    again = promote(
        gitops.user,
        PromoteOptions(model=registry.a, version=registry.v(registry.a, "good1"), env="staging"),
        tracking_uri=registry.url,
        download_dir=tmp_path / "dl",
        verify=signature_verifier("staging", None, warn=lambda _m: None),
    )
    assert again.changed is not pushed
    assert len(promote_commits(gitops)) == 1


def test_a_kill_after_pushing_the_review_branch_is_completed_by_a_rerun(
    gitops, registry, tmp_path, signed_images
):
    key = tmp_path / "cosign.pub"
    key.write_bytes(signed_images.key_pem)
    body = tmp_path / "pr.md"
    args = (
        "--key",
        str(key),
        "--allow-insecure-registry",
        "--image",
        signed_images.signed,
        "--pr-body",
        str(body),
    )
    main = gitops.remote_sha()
    proc = start(gitops.user, registry, registry.a, "good1", tmp_path, "after-push", *args, env="production")
    reached(tmp_path, proc, "after-push")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=DEADLINE_S)
    branch = f"promote/{registry.a}/v{registry.v(registry.a, 'good1')}"
    pushed = gitops.remote_sha(branch)
    assert pushed is not None and not body.exists() and gitops.remote_sha() == main

    code, out = finish(
        start(gitops.user, registry, registry.a, "good1", tmp_path, None, *args, env="production")
    )
    assert code == 0, out
    assert gitops.remote_sha(branch) == pushed  # reused, not pushed twice
    assert body.is_file() and "to production" in body.read_text()
    assert gitops.remote_sha() == main
