"""Named pause points, so tests can stop a real process exactly there and kill or release it.

A test sets SLUICE_TEST_PAUSE_AT=<point>[,<point>...] and SLUICE_TEST_PAUSE_DIR=<dir>. On first
reaching a listed point a process creates a FIFO `<dir>/<pid>.<point>.go`, announces itself with
`<dir>/<pid>.<point>.reached`, and blocks until the test writes a line into the FIFO. That is a
barrier without sleeps: racing processes are released together, and a kill lands while a process
is provably inside the step under test. Unset, a checkpoint costs one dict lookup.

Promotion names its points in `sluice.promotion.hooks`; every pipeline step pauses at
`step-<name>` when it starts (`ml.components.markers.step`), in the task process running it.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_POINTS = "SLUICE_TEST_PAUSE_AT"
ENV_DIR = "SLUICE_TEST_PAUSE_DIR"

_passed: set[str] = set()


def wanted(point: str) -> bool:
    points = os.environ.get(ENV_POINTS)
    return bool(points) and point not in _passed and point in points.split(",")


def checkpoint(point: str) -> None:
    """Block at `point` until the test releases this process (only when the test asked for it)."""
    if not wanted(point):
        return
    _passed.add(point)
    directory = Path(os.environ.get(ENV_DIR, "."))
    fifo = directory / f"{os.getpid()}.{point}.go"
    os.mkfifo(fifo)
    (directory / f"{os.getpid()}.{point}.reached").touch()
    with open(fifo, encoding="utf-8") as gate:  # blocks until the test opens it for writing
        gate.readline()
