"""The `::sluice::` marker protocol: one JSON line per pipeline step on stdout.

`sluice run` turns those lines into its progress and summary (`ml.runners.progress`); on a
cluster they are ordinary, greppable log lines. A SluiceError inside a step becomes the
marker's `error`, which the CLI shows as one line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ml.components import task_exit
from sluice import lifeline
from sluice.checkpoints import checkpoint
from sluice.errors import SluiceError

MARKER = "::sluice::"


def emit(**fields: Any) -> None:
    """One machine-readable progress line on stdout (flushed: the runner streams it live)."""
    print(f"{MARKER} {json.dumps(fields, sort_keys=True, default=str)}", flush=True)


def process_age() -> float | None:
    """Seconds since this process started (Linux), so a benchmark can tell start-up from work."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def step(name: str, **fields: Any) -> Iterator[dict]:
    """Time a step and report it; a SluiceError becomes a one-line `error` the CLI can show.

    Inside a task of `sluice run` the step first ties its process to the run's lifeline (it dies,
    with whatever it started, when the run is killed); tests can pause it at `step-<name>`.
    """
    task_exit.install()
    lifeline.install()
    checkpoint(f"step-{name}")
    started = time.perf_counter()
    report: dict[str, Any] = dict(fields)
    try:
        yield report
    except SluiceError as exc:
        emit(step=name, error=str(exc), seconds=round(time.perf_counter() - started, 3), **fields)
        raise
    emit(step=name, seconds=round(time.perf_counter() - started, 3), process_s=process_age(), **report)
