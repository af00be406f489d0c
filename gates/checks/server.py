"""The candidate's model server as its own process on a loopback port: started, awaited, stopped.

It runs the command production runs, `python -m ml.serving` (the serving image's CMD), on the
model's `onnx` flavor. A separate process matters: a server in a thread of the gate would share
the GIL with the load generator, and the gate would measure its own contention. Start-up takes
~2 s, so the model gate starts the server first and waits for /ping only when it needs it.

Lifecycle: the server stays in the gate's process group (a Ctrl-C or a group kill reaches it) and
is started with `--parent-pid <gate pid>`, so the kernel stops it (PR_SET_PDEATHSIG) when the gate
dies, also by SIGKILL, when no `finally` runs. A server that exits early is reported with its exit
status and the last line it wrote to stderr.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from gates.checks.result import fmt

SERVER_MODULE = ["-m", "ml.serving"]
STOP_TIMEOUT_S = 15.0


class ServeError(RuntimeError):
    """The candidate could not be served or measured; the message is the reason recorded in evidence.

    `server_exit` holds {"exit_status", "last_stderr_line"} when the server process had exited.
    """

    def __init__(self, message: str, server_exit: dict | None = None) -> None:
        super().__init__(message)
        self.server_exit = server_exit


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ping(port: int, path: str = "/ping") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def describe_exit(code: int) -> str:
    """`exit code 3`, or `killed by SIGKILL` for a negative Popen return code."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class ModelServer:
    """One model-server process on a loopback port, started now, awaited later."""

    def __init__(
        self,
        model_dir: str | Path,
        workers: int,
        log: IO[bytes],
        name: str = "model",
        command: list | None = None,
    ) -> None:
        self.port = free_port()
        self.workers = workers
        self.name = name
        self.startup_s: float | None = None
        self._log = log
        self._started = time.monotonic()
        options = ["--model-uri", str(model_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        options += ["--workers", str(workers), "--name", name, "--parent-pid", str(os.getpid())]
        self.proc = subprocess.Popen(
            [*(command or [sys.executable, *SERVER_MODULE]), *options], stdout=log, stderr=subprocess.STDOUT
        )

    def exit_info(self) -> dict | None:
        """{"exit_status", "last_stderr_line"} once the process has exited, else None."""
        code = self.proc.poll()
        if code is None:
            return None
        self._log.flush()
        self._log.seek(0)
        lines = [ln.strip() for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
        return {"exit_status": code, "last_stderr_line": lines[-1] if lines else None}

    def check_alive(self, when: str) -> None:
        """Raise ServeError naming the exit status and last stderr line if the server has exited."""
        info = self.exit_info()
        if info is not None:
            last = info["last_stderr_line"] or "no output"
            raise ServeError(f"model server {when} ({describe_exit(info['exit_status'])}): {last}", info)

    def wait_ready(self, timeout_s: float) -> float:
        """Block until /ping answers; returns how long THIS call waited. Raises ServeError."""
        began = time.monotonic()
        deadline = self._started + timeout_s
        while self.startup_s is None:
            self.check_alive("exited before it was ready")
            if ping(self.port):
                self.startup_s = time.monotonic() - self._started
            elif time.monotonic() > deadline:
                raise ServeError(f"model server did not answer /ping within {fmt(timeout_s)} s")
            else:
                time.sleep(0.05)
        return time.monotonic() - began

    def stop(self) -> None:
        """SIGTERM the server (uvicorn stops its workers; they also die with it), SIGKILL if it hangs."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


@contextmanager
def model_server(
    model_dir: str | Path, workers: int = 1, name: str = "model", command: list | None = None
) -> Iterator[ModelServer]:
    """Start serving `model_dir` now; the caller decides when to `wait_ready`. Always stopped on exit.

    `command` replaces `python -m ml.serving` (tests serve a deliberately slow app this way; the
    options are the same).
    """
    with tempfile.TemporaryFile() as log:
        server = ModelServer(model_dir, workers, log, name, command)
        try:
            yield server
        finally:
            server.stop()
