"""Sluice's temporary directories: one private root, the owner in every name, swept when it died.

Everything temporary a command makes (a run's task scratch and KFP workspace, a promotion's
clone) lives in `$TMPDIR/sluice-<uid>/<kind>-<pid>-<start>-<random>`. The owner removes it on
every normal or failing exit; what a SIGKILL leaves behind is removed by the next command that
sweeps (`sluice run`, `promote`, `rollback`, `status`), which prints the path. A directory whose
owner (pid and start time) still runs is never touched, and nothing outside the root is: other
programs' files in $TMPDIR are not ours to judge.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from sluice.lifeline import alive, start_ticks

_NAME = re.compile(r"^(?P<kind>[a-z]+)-(?P<pid>\d+)-(?P<start>\d+)-")


def root() -> Path:
    """The private root, created on first use (mode 0700)."""
    path = Path(tempfile.gettempdir()) / f"sluice-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    return path


def make(kind: str) -> Path:
    """A new directory of this process, e.g. `promote-<pid>-<start>-abc123`."""
    pid = os.getpid()
    return Path(tempfile.mkdtemp(prefix=f"{kind}-{pid}-{start_ticks(pid) or 0}-", dir=root()))


@contextlib.contextmanager
def directory(kind: str) -> Iterator[Path]:
    """A directory removed however the block ends (a SIGKILL leaves it to `sweep`)."""
    path = make(kind)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def owner(path: Path) -> tuple[int, int] | None:
    match = _NAME.match(path.name)
    return (int(match["pid"]), int(match["start"])) if match else None


def sweep(report: Callable[[str], None]) -> list[Path]:
    """Remove the directories of processes that no longer run; `report` gets one line per path."""
    base = Path(tempfile.gettempdir()) / f"sluice-{os.getuid()}"
    if not base.is_dir():
        return []
    removed = []
    for path in sorted(base.iterdir()):
        found = owner(path)
        if found is None or alive(*found):
            continue
        shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            removed.append(path)
            report(f"removed {path}, left behind by a killed Sluice process (pid {found[0]})")
    return removed
