"""A pipeline task process that succeeded ends with `os._exit(0)`, skipping interpreter teardown.

A task process lives for seconds, and once pandas, scikit-learn, skops and MLflow are loaded,
Python's orderly shutdown (clearing thousands of modules) costs 0.3-1 s of it (measured, see
benchmarks/bench_run.py). `install()` runs when a task's first step starts (`markers.step`),
before the step imports anything heavy, so every exit handler registered later (MLflow's,
temp-dir cleanups) still runs first: atexit is last-in, first-out. Logging and the standard
streams are flushed by hand. A task that raised goes through the normal exit with its non-zero
status: the exception hook marks it before exit handlers run. The executor has written its
output file (closed) before the interpreter starts exiting, so nothing the runner reads is lost.
"""

from __future__ import annotations

import atexit
import os
import sys
from contextlib import suppress

_installed: list[bool] = []


def in_kfp_task_process() -> bool:
    """True only inside `python -m kfp.dsl.executor_main` (a pipeline task), never in tests or the CLI."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    executor = getattr(main_spec, "name", "") == "kfp.dsl.executor_main"
    return executor and os.environ.get("_KFP_RUNTIME") == "true"


def install() -> None:
    """Register the fast exit once per task process; a no-op anywhere else."""
    if _installed or not in_kfp_task_process():
        return
    _installed.append(True)
    failed: list[bool] = []
    previous_hook = sys.excepthook

    def note_failure(*exc_info) -> None:
        failed.append(True)
        previous_hook(*exc_info)

    def exit_now() -> None:
        if failed:
            return
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        os._exit(0)

    sys.excepthook = note_failure
    atexit.register(exit_now)
