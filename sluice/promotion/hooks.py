"""Named pause points inside a promotion, so tests can stop a real process exactly there.

A test sets SLUICE_TEST_PAUSE_AT=<point>[,<point>...] and SLUICE_TEST_PAUSE_DIR=<dir>. On first
reaching a listed point the process creates a FIFO `<dir>/<pid>.<point>.go`, announces itself
with `<dir>/<pid>.<point>.reached`, and blocks until the test writes a line into the FIFO. That is
a barrier without sleeps: two racing promotions are released together, and a kill lands while a
process is provably inside the step under test. Unset, a checkpoint costs one dict lookup.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_POINTS = "SLUICE_TEST_PAUSE_AT"
ENV_DIR = "SLUICE_TEST_PAUSE_DIR"
POINTS = ("after-write", "after-render", "after-commit", "before-push", "after-push")

_passed: set[str] = set()


def checkpoint(point: str) -> None:
    wanted = os.environ.get(ENV_POINTS)
    if not wanted or point in _passed or point not in wanted.split(","):
        return
    _passed.add(point)
    directory = Path(os.environ.get(ENV_DIR, "."))
    fifo = directory / f"{os.getpid()}.{point}.go"
    os.mkfifo(fifo)
    (directory / f"{os.getpid()}.{point}.reached").touch()
    with open(fifo, encoding="utf-8") as gate:  # blocks until the test opens it for writing
        gate.readline()
