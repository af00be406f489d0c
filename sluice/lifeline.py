"""Processes a Sluice command starts die with it, even when it is killed with SIGKILL.

`sluice run` starts pipeline tasks through KFP's local runner (`sh -ec ...` around a Python
process, so a parent-death signal on the direct child would not reach the task), and a task may
start a model server of its own. None of them would notice a SIGKILL of the run. While the run
holds its lifeline (`held()`), every process it starts inherits SLUICE_LIFELINE=<pid>:<start>;
`install()`, called where such a process starts its work, watches that owner with a pidfd (no
polling on Linux) and, when it exits, kills its own descendants and exits at once. The owner's
start time guards against a recycled pid. A model server in a session of its own (out of reach of
a process-group kill) dies with its gate by the kernel's parent-death signal instead
(`ml.serving.lifecycle`, which watches the run with `when_gone` too).
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

ENV = "SLUICE_LIFELINE"
EXIT_CODE = 128 + signal.SIGKILL  # what the shell reports for a killed process
POLL_S = 1.0  # only where pidfd_open is missing (not Linux): how often the owner is looked at

_installed: list[bool] = []


def start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, Linux), None when unknown or not running."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def token(pid: int | None = None) -> str:
    pid = os.getpid() if pid is None else pid
    return f"{pid}:{start_ticks(pid) or 0}"


def alive(pid: int, start: int) -> bool:
    """Is the process that had `pid` and started at `start` still running (not a zombie)?"""
    if not Path("/proc").is_dir():  # no procfs: trust the pid alone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (start == 0 or int(fields[19]) == start)


def parse(value: str) -> tuple[int, int] | None:
    pid, _, start = value.partition(":")
    return (int(pid), int(start or 0)) if pid.isdigit() and (start or "0").isdigit() else None


@contextlib.contextmanager
def held() -> Iterator[str]:
    """Processes started inside this block die with this process; restores the environment after."""
    previous = os.environ.get(ENV)
    os.environ[ENV] = token()
    try:
        yield os.environ[ENV]
    finally:
        if previous is None:
            os.environ.pop(ENV, None)
        else:
            os.environ[ENV] = previous


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid`, read from /proc (children before grandchildren)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], list(children.get(pid, []))
    while queue:
        child = queue.pop(0)
        found.append(child)
        queue.extend(children.get(child, []))
    return found


def kill_descendants(pid: int) -> None:
    for child in descendants(pid):
        with contextlib.suppress(OSError):
            os.kill(child, signal.SIGKILL)


def _die() -> None:
    kill_descendants(os.getpid())
    os._exit(EXIT_CODE)


def _watch(pid: int, start: int, then: Callable[[], None]) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return then()
    except (AttributeError, OSError):  # no pidfds here: look every POLL_S seconds
        stop = threading.Event()
        while alive(pid, start):
            stop.wait(POLL_S)
        return then()
    if alive(pid, start):  # else the pid was recycled: the owner is gone already
        select.select([fd], [], [])  # readable once the owner has exited
    os.close(fd)
    then()


def when_gone(pid: int, start: int, then: Callable[[], None], name: str = "sluice-lifeline") -> None:
    """Call `then` (in a daemon thread) once the process `pid` that started at `start` (0: any
    start) has exited. The one watcher of another process's exit: the lifeline below, and the
    model gate's `ml.serving.lifecycle.exit_with`, use it."""
    threading.Thread(target=_watch, args=(pid, start, then), name=name, daemon=True).start()


def install() -> None:
    """In a process started under `held()`: die with the owner. A no-op anywhere else."""
    owner = parse(os.environ.get(ENV, ""))
    if _installed or owner is None or owner[0] == os.getpid():
        return
    _installed.append(True)
    when_gone(*owner, _die)
