"""#14 break 5 (and 1): `sluice run` killed with SIGKILL at each pipeline step and at the laptop
promotion's pause points. Nothing the run started keeps running or listening, and a plain re-run
ends with exactly one model version and one promotion commit, sweeping what the kill left."""

from __future__ import annotations

import pytest

from tests.conftest import wait_until
from tests.faults.harness import DEADLINE_S, leftovers, listening_ports, port_listening, start, survivors, tagged
from tests.faults.pipeline import STAGING_BRANCH, gitops_repo, promotion_state, run_args, versions

pytestmark = pytest.mark.slow

SERVING = "model-server"  # not a pause point: the kill lands once the candidate server listens
CORE = ["step-register", SERVING, "after-commit"]
HEAVY = ["step-load", "step-data-gate", "step-split", "step-train", "step-select", "step-log",
         "step-model-gate", "after-write", "after-render"]  # fmt: skip
SWEPT = "left behind by a killed Sluice process"


def kill_points() -> list:
    return [pytest.param(p, id=p) for p in CORE] + [pytest.param(p, id=p, marks=pytest.mark.heavy) for p in HEAVY]


@pytest.mark.parametrize("point", kill_points())
def test_a_run_killed_at_any_step_leaves_nothing_running_and_a_rerun_recovers(
    point, tmp_path, fault_slice, matrix
):
    matrix.name(f"run: kill -9 at {point}")
    repo, head = gitops_repo(tmp_path / "gitops")
    home = tmp_path / "home"
    args = run_args(home, fault_slice, repo=repo)
    run = start(args, tmp_path, pause=None if point == SERVING else point)
    if point == SERVING:
        wait_until(lambda: bool(listening_ports(tagged(run.tag))), "the candidate server listening",
                   timeout=DEADLINE_S, proc=run.proc)  # fmt: skip
    else:
        run.reached(point)
    ports = listening_ports(tagged(run.tag))
    run.kill()

    assert survivors(run.tag) == []
    assert [p for p in ports if port_listening(p)] == []

    again = start(args, tmp_path)
    code, out = again.finish()
    assert code == 0, out
    assert versions(home) == [1]
    assert promotion_state(repo, head) == {STAGING_BRANCH: 1}
    assert SWEPT in out, out
    assert leftovers(tmp_path / "tmp") == []
    matrix.record("recovered")
