"""Processes that die with the process that started them (Linux PR_SET_PDEATHSIG).

A model server started by the model gate must not outlive it, also when the gate (or the
`sluice run` above it) is killed with SIGKILL and runs no cleanup: the kernel then sends the
child the signal set here. The flag is per process and cleared by fork, so every process in the
chain sets it for itself: the server (parent: the gate) and each uvicorn worker (parent: the
server's supervisor). The gate's task process is not a child of `sluice run` but of KFP's `sh`
wrapper, which survives the runner, so it watches the runner's pid itself (`exit_with`).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int, sig: int = signal.SIGTERM) -> None:
    """Have the kernel send `sig` to this process when its parent exits; exit now if it already has.

    The check after prctl closes the race where the parent died before the flag was set (the
    process is then already re-parented and no signal would ever come).
    """
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:
        sys.exit(f"parent process {parent_pid} is gone; exiting")


# Set by the local runner to its own pid for the duration of a pipeline: the tasks it starts are
# wrapped in `sh -ec ...` by KFP, so their parent is that shell, not the runner, and the shell
# outlives a killed runner. Tasks that start servers watch this pid instead (`exit_with`).
RUN_PID_ENV = "SLUICE_RUN_PID"


def exit_with(pid: int) -> None:
    """End this process (SIGTERM to itself) as soon as process `pid` exits, whatever its relation.

    PR_SET_PDEATHSIG only watches the direct parent; a pidfd (Linux >= 5.3) watches any process
    and becomes readable when it exits (`sluice.lifeline.when_gone`, the one such watcher).
    """
    from sluice.lifeline import start_ticks, when_gone

    when_gone(pid, start_ticks(pid) or 0, lambda: os.kill(os.getpid(), signal.SIGTERM), f"exit-with-{pid}")
