"""#14 break 5 (and 1): `sluice run` killed with SIGKILL at each pipeline step and at the laptop
promotion's pause points. Nothing the run started keeps running or listening, and a plain re-run
ends with exactly one model version and one promotion commit, sweeping what the kill left.

`pid` kills the run's own process (`kill -9 PID`): its tasks must notice (the lifeline). `group`
kills its whole process group (`kill -9 -PGID`, what a terminal or CI job cancel does): everything
in the group dies at once; the candidate model server runs in a session of its own, so it must
die with its gate (`ml.serving.lifecycle`: PR_SET_PDEATHSIG on the server and on each worker).
"""

from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import wait_until
from tests.faults.harness import (
    DEADLINE_S,
    leftovers,
    listening_ports,
    port_listening,
    start,
    survivors,
    tagged,
)
from tests.faults.pipeline import STAGING_BRANCH, gitops_repo, promotion_state, run_args, versions

pytestmark = pytest.mark.slow

SERVING = "model-server"  # not a pause point: the kill lands once the candidate server listens
SWEPT = "left behind by a killed Sluice process"


def kill_points() -> list:
    """Core: the group kill during the gate (#14's leak) and a kill just before registration (the
    re-run must complete it, one version). The rest, including the pid kill during the gate that
    tests/ml/test_run_killed.py also covers, are heavy: each costs two pipeline runs."""
    core = [("step-register", "pid"), (SERVING, "group")]
    params = [pytest.param(p, m, id=f"{p}-{m}") for p, m in core]
    heavy = ["step-load", "step-data-gate", "step-split", "step-train", "step-select", "step-log",
             "step-model-gate", SERVING, "after-write", "after-render", "after-commit"]  # fmt: skip
    return params + [pytest.param(p, "pid", id=f"{p}-pid", marks=pytest.mark.heavy) for p in heavy]


@pytest.mark.parametrize(("point", "mode"), kill_points())
def test_a_run_killed_at_any_step_leaves_nothing_running_and_a_rerun_recovers(
    point, mode, tmp_path, fault_slice, matrix
):
    matrix.name(f"run: kill -9 ({mode}) at {point}")
    repo, head = gitops_repo(tmp_path / "gitops")
    home = tmp_path / "home"
    args = run_args(home, fault_slice, repo=repo)
    run = start(args, tmp_path, pause=None if point == SERVING else point, new_session=mode == "group")
    if point == SERVING:
        wait_until(lambda: bool(listening_ports(tagged(run.tag))), "the candidate server listening",
                   timeout=DEADLINE_S, proc=run.proc)  # fmt: skip
    else:
        run.reached(point)
    ports = listening_ports(tagged(run.tag))
    run.kill(group=mode == "group")

    try:
        assert survivors(run.tag) == []
        assert [p for p in ports if port_listening(p)] == []
        again = start(args, tmp_path)
        code, out = again.finish()
        assert code == 0, out
        assert versions(home) == [1]
        assert promotion_state(repo, head) == {STAGING_BRANCH: 1}
        assert SWEPT in out, out
        assert leftovers(tmp_path / "tmp") == []
    finally:
        for pid in tagged(run.tag):  # this test's own leftovers, by pid
            os.kill(pid, signal.SIGKILL)
    matrix.record("recovered")

