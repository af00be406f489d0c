"""Processes that die with the process that started them (Linux PR_SET_PDEATHSIG).

A model server started by the model gate must not outlive it, also when the gate (or the
`sluice run` above it) is killed with SIGKILL and runs no cleanup: the kernel then sends the
child the signal set here. The flag is per process and cleared by fork, so every process in the
chain sets it for itself: the gate's task process (parent: `sluice run`), the server (parent:
the gate) and each uvicorn worker (parent: the server's supervisor).
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
