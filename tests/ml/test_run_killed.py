"""`sluice run` killed with SIGKILL while its model gate serves the candidate leaves no server behind.

SIGKILL runs no cleanup, so only the kernel can stop the children: the model-gate task process
dies with `sluice run` and the server with the task process (PR_SET_PDEATHSIG, see
ml/serving/lifecycle.py). The run is given a long load test (100 s) so that it is surely inside
the gate when it is killed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import wait_until
from tests.ml.conftest import LENIENT_POLICY

pytestmark = pytest.mark.slow


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def servers_under(root: int) -> list[tuple[int, int]]:
    """(pid, port) of every `python -m ml.serving` process descending from `root`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid, cmd = int(entry.name), _cmdline(int(entry.name))
        if "ml.serving" not in cmd or "--port" not in cmd:
            continue
        ancestor = _parent(pid)
        while ancestor not in (None, 0, 1, root):
            ancestor = _parent(ancestor)
        if ancestor == root:
            found.append((pid, int(cmd[cmd.index("--port") + 1])))
    return found


def listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_sigkill_during_the_model_gate_leaves_no_server_listening(tmp_path, demo_slice):
    policy = yaml.safe_load(LENIENT_POLICY.read_text())
    policy["model"]["latency"].update(requests=4000, rate_rps=40)  # 100 s of load: we kill it first
    policy_path = tmp_path / "long-latency.yaml"
    policy_path.write_text(yaml.safe_dump(policy))
    run = subprocess.Popen(
        [sys.executable, "-m", "sluice", "run", "--home", str(tmp_path / "home"), "--no-promote",
         "--data", str(demo_slice.current), "--contract", str(demo_slice.contract),
         "--reference", str(demo_slice.reference), "--policy", str(policy_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path,
    )  # fmt: skip
    try:
        found: list = []

        def gate_serving() -> bool:
            found[:] = [(pid, port) for pid, port in servers_under(run.pid) if listening(port)]
            return bool(found)

        wait_until(gate_serving, "the model gate's server listening", timeout=400, proc=run)
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    (server, port), gate = found[0], _parent(found[0][0])
    wait_until(lambda: not _alive(server) and not _alive(gate), "server and gate gone", timeout=60)
    assert not listening(port)
