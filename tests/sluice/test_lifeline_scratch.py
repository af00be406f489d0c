"""The basics behind "nothing outlives a killed run": the lifeline and the temp root's sweep.

Real processes: an owner is killed with SIGKILL and what it started must go, including a
grandchild in a session of its own; the sweep removes only directories of owners that are gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from sluice import lifeline, scratch
from tests.conftest import wait_until

OWNER = textwrap.dedent(
    """
    import subprocess, sys
    from sluice import lifeline
    with lifeline.held():
        child = subprocess.Popen([sys.executable, "-c", sys.argv[1]])
    print(child.pid, flush=True)
    child.wait()
    """
)
CHILD = textwrap.dedent(
    """
    import subprocess, sys, time
    from sluice import lifeline
    lifeline.install()
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    print(server.pid, flush=True)
    time.sleep(600)
    """
)


def gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_a_sigkilled_owner_takes_its_children_and_their_sessions_with_it(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", OWNER, CHILD], stdout=subprocess.PIPE, text=True)
    child, server = int(owner.stdout.readline()), int(owner.stdout.readline())
    assert not gone(child) and not gone(server)
    os.kill(owner.pid, signal.SIGKILL)
    owner.wait(timeout=30)
    wait_until(lambda: gone(child) and gone(server), "the owner's child and its server exiting", timeout=30)


def test_install_is_a_no_op_without_a_lifeline_or_in_the_owner(monkeypatch):
    monkeypatch.delenv(lifeline.ENV, raising=False)
    lifeline.install()
    monkeypatch.setenv(lifeline.ENV, lifeline.token())
    lifeline.install()  # the owner never watches itself
    assert lifeline._installed == []


def test_sweep_removes_only_directories_whose_owner_is_gone(tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr("tempfile.tempdir", None)
    mine = scratch.make("run")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    root = scratch.root()
    orphan = root / f"promote-{dead.pid}-{lifeline.start_ticks(os.getpid())}-abc"  # pid gone
    orphan.mkdir()
    (orphan / "work").mkdir()
    foreign = root / "not-ours"
    foreign.mkdir()
    outside = tmp_path / "sluice-promote-legacy"
    outside.mkdir()
    lines: list[str] = []

    assert scratch.sweep(lines.append) == [orphan]
    assert mine.is_dir() and foreign.is_dir() and outside.is_dir() and not orphan.exists()
    assert lines == [f"removed {orphan}, left behind by a killed Sluice process (pid {dead.pid})"]
    with scratch.directory("gate") as path:
        assert path.parent == root and path.name.startswith(f"gate-{os.getpid()}-")
    assert not path.exists()
