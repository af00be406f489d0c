"""Execute the training pipeline with KFP's local runner, one progress line per step.

`kfp.local.SubprocessRunner(use_venv=False)` runs each task as a process of this interpreter,
so the installed `ml` and `gates` packages are what every task imports (no pip at run time).
Caching is on; the deterministic steps key on the data's sha256 (the runner keys artifacts by
path, not content).

Nothing a task makes outlives the run: the runner's workspace and every task's TMPDIR (where the
runner's `mktemp -d` puts each `ephemeral_component.py`, and the gates their scratch files) are
inside the run's own scratch directory (`sluice.scratch`), and every task holds the run's
lifeline (`sluice.lifeline`): it dies, with the model server it may have started, if the run is
killed.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TextIO

from ml.registry.budget import Budget
from ml.runners.progress import ProgressTap
from ml.serving.lifecycle import RUN_PID_ENV
from sluice import lifeline


@contextlib.contextmanager
def task_environment(scratch: Path) -> Iterator[None]:
    """While the pipeline runs, tasks get TMPDIR inside `scratch`, the run's lifeline, and the
    run's pid for the tasks that start servers (`ml.serving.lifecycle.exit_with`)."""
    tmp = scratch / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    names = ("TMPDIR", RUN_PID_ENV)
    previous = {name: os.environ.get(name) for name in names}
    os.environ.update({"TMPDIR": str(tmp), RUN_PID_ENV: str(os.getpid())})
    try:
        with lifeline.held():
            yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_pipeline(
    arguments: dict[str, Any], pipeline_root: Path, log_path: Path, out: TextIO, scratch: Path
) -> ProgressTap:
    """Run the pipeline; returns the ProgressTap holding what each task did."""
    from kfp import local

    from ml.pipelines.training import DEFAULT_BASE_IMAGE, build_pipeline

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        workspace_root=str(scratch / "kfp-workspace"),
        raise_on_error=False,
        enable_caching=True,
    )
    pipeline = build_pipeline(DEFAULT_BASE_IMAGE, Budget.from_env())
    with task_environment(scratch):
        return _run_tapped(pipeline, arguments, log_path, out)


def _run_tapped(pipeline, arguments: dict[str, Any], log_path: Path, out: TextIO) -> ProgressTap:
    """Run with stdout and logging going through a ProgressTap (one line per step, all in the log)."""
    import builtins
    import logging
    import warnings

    root = logging.getLogger()
    # kfp 2.17.0 swaps builtins.print per task and restores it from threads in any order, which
    # can leave an indenting print installed for good; put everything back ourselves.
    saved = (root.level, root.handlers[:], sys.stdout, builtins.print)
    with log_path.open("w") as log, warnings.catch_warnings():
        # The runner warns that resource requests and display names are ignored locally; expected.
        warnings.simplefilter("ignore")
        tap = ProgressTap(log, out)
        handler = logging.StreamHandler(tap)
        handler.setFormatter(logging.Formatter("%(levelname)s - %(message)s"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        sys.stdout = tap
        try:
            pipeline(**arguments)
        finally:
            sys.stdout, builtins.print = saved[2], saved[3]
            root.setLevel(saved[0])
            root.handlers[:] = saved[1]
            tap.flush()
    return tap


def task_timings(tap: ProgressTap) -> list[dict[str, Any]]:
    """Per task: when it ran (offsets from the pipeline's start, to see overlap), the wall time
    the runner saw, the task process's age when the step ended, and the step's own work."""
    return [
        {
            "task": t.name,
            "status": t.status,
            "start_s": round(t.started - tap.opened, 3),
            "wall_s": round(t.wall, 3),
            "process_s": t.marker.get("process_s"),
            "compute_s": t.compute,
            "step": t.marker.get("step"),
        }
        for t in tap.tasks
    ]
