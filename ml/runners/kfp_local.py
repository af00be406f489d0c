"""Execute the training pipeline with KFP's local runner, one progress line per step.

`kfp.local.SubprocessRunner(use_venv=False)` runs each task as a process of this interpreter,
so the installed `ml` and `gates` packages are what every task imports (no pip at run time).
Caching is on; the deterministic steps key on the data's sha256 (the runner keys artifacts by
path, not content).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, TextIO

from ml.runners.progress import ProgressTap


def run_pipeline(arguments: dict[str, Any], pipeline_root: Path, log_path: Path, out: TextIO) -> ProgressTap:
    """Run the pipeline; returns the ProgressTap holding what each task did."""
    import builtins
    import logging
    import warnings

    from kfp import local

    from ml.pipelines.training import DEFAULT_BASE_IMAGE, build_pipeline
    from ml.serving.lifecycle import RUN_PID_ENV

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(pipeline_root),
        raise_on_error=False,
        enable_caching=True,
    )
    pipeline = build_pipeline(DEFAULT_BASE_IMAGE)
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
        # Tasks that start servers end with this process, even when it is killed (lifecycle.exit_with).
        saved_pid = os.environ.get(RUN_PID_ENV)
        os.environ[RUN_PID_ENV] = str(os.getpid())
        try:
            pipeline(**arguments)
        finally:
            if saved_pid is None:
                os.environ.pop(RUN_PID_ENV, None)
            else:
                os.environ[RUN_PID_ENV] = saved_pid
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
