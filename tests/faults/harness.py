"""Real `sluice` processes for the fault matrix: started tagged, paused at named points, killed.

Every process a test starts carries SLUICE_FAULT_TAG=<uuid> in its environment, and so does
everything it starts in turn (tasks, model servers, git), so "nothing outlives the kill" is a scan
of /proc for the tag, not a guess at a process tree. Pauses use `sluice.checkpoints`: a test
waits for `<pid>.<point>.reached` (any pid: a pipeline step pauses in its task process) and then
kills or releases. Every wait polls a condition with a deadline; nothing sleeps to synchronise.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests.conftest import wait_until

TAG_ENV = "SLUICE_FAULT_TAG"
# What other tests' MLflow calls leave in os.environ (mlflow.set_experiment exports the id): a
# command under test must see only what its test gives it.
MLFLOW_LEFTOVERS = (
    "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME", "MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"
)  # fmt: skip


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in MLFLOW_LEFTOVERS}
    return {**env, **extra}
DEADLINE_S = 600  # a pipeline run on a loaded 2-core CI box; only ever the limit of a poll


@dataclass
class Sluice:
    """One `sluice ...` process started by a test, with its own pause directory and output files."""

    proc: subprocess.Popen
    tag: str
    pause_dir: Path
    out_path: Path
    err_path: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return self.out_path.read_text(errors="replace") + self.err_path.read_text(errors="replace")

    def finish(self, timeout: float = DEADLINE_S) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            tail = self.output()[-4000:]
            raise AssertionError(f"sluice did not finish in {timeout:.0f}s:\n{tail}") from None
        return self.proc.returncode, self.output()

    def reached(self, point: str, timeout: float = DEADLINE_S) -> Path:
        """Wait until some process of this command blocks at `point`; the FIFO that releases it."""
        found: list[Path] = []

        def arrived() -> bool:
            found[:] = sorted(self.pause_dir.glob(f"*.{point}.reached"))
            return bool(found)

        try:
            wait_until(arrived, f"sluice {self.pid} reaching {point}", timeout=timeout, proc=self.proc)
        except RuntimeError as exc:
            raise AssertionError(f"{exc}\n{self.output()[-4000:]}") from None
        return found[0].with_name(found[0].name.removesuffix(".reached") + ".go")

    def kill(self, group: bool = False) -> None:
        """SIGKILL the command (only its own pid, as `kill -9 PID` does; or its whole group)."""
        if group:
            os.killpg(self.pid, signal.SIGKILL)
        else:
            os.kill(self.pid, signal.SIGKILL)
        assert self.proc.wait(timeout=60) == -signal.SIGKILL


def start(args: list[str], tmp: Path, *, pause: str | None = None, name: str = "sluice",
          env: dict[str, str] | None = None, new_session: bool = False) -> Sluice:  # fmt: skip
    """Start `python -m sluice ARGS` with TMPDIR inside `tmp` (leaks stay visible to the test)."""
    tag = uuid.uuid4().hex
    pause_dir = tmp / f"pause-{tag[:8]}"
    pause_dir.mkdir(parents=True)
    (tmp / "tmp").mkdir(exist_ok=True)
    child_env = clean_env(**(env or {}))
    child_env.update({TAG_ENV: tag, "TMPDIR": str(tmp / "tmp"), "SLUICE_TEST_PAUSE_DIR": str(pause_dir)})
    child_env.pop("SLUICE_TEST_PAUSE_AT", None)
    if pause:
        child_env["SLUICE_TEST_PAUSE_AT"] = pause
    out, err = tmp / f"{name}-{tag[:8]}.out", tmp / f"{name}-{tag[:8]}.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "sluice", *map(str, args)],
            env=child_env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=new_session,
        )
    return Sluice(proc, tag, pause_dir, out, err)


def release(*fifos: Path, timeout: float = 60) -> None:
    """Open every FIFO first (the barrier), then let all waiting processes go at once."""
    fds = []
    deadline = time.monotonic() + timeout
    for fifo in fifos:
        while True:
            try:
                fds.append(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
                break
            except OSError as exc:  # ENXIO: the reader has not opened its end yet
                if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
    for fd in fds:
        os.write(fd, b"go\n")
        os.close(fd)


class Releaser:
    """Releases every process of `run` that reaches `point`, until stopped: a retried pipeline step
    runs in a new process each attempt, and each one pauses at the step's point again."""

    def __init__(self, run: Sluice, point: str) -> None:
        self.run, self.point = run, point
        self.released: list[Path] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            for reached in sorted(self.run.pause_dir.glob(f"*.{self.point}.reached")):
                fifo = reached.with_name(reached.name.removesuffix(".reached") + ".go")
                if fifo not in self.released:
                    release(fifo)
                    self.released.append(fifo)
            self._stop.wait(0.05)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def tagged(tag: str) -> list[int]:
    """Live (non-zombie) processes whose environment carries this tag."""
    needle = f"{TAG_ENV}={tag}".encode()
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if needle not in environ.read_bytes().split(b"\0"):
                continue
            state = (environ.parent / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.append(int(environ.parent.name))
    return found


def describe(pids: list[int]) -> list[str]:
    lines = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmd = "?"
        lines.append(f"{pid}: {cmd[:160]}")
    return lines


def listening_ports(pids: list[int]) -> set[int]:
    """TCP ports these processes listen on (socket inodes matched against /proc/net/tcp*)."""
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*") if Path(f"/proc/{pid}/fd").is_dir() else []:
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A = LISTEN
                ports.add(int(parts[1].rsplit(":", 1)[1], 16))
    return ports


def port_listening(port: int) -> bool:
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


def survivors(tag: str, timeout: float = 30) -> list[str]:
    """What still runs of a killed command once its processes had `timeout` s to notice."""
    try:
        wait_until(lambda: not tagged(tag), "processes of the killed command exiting", timeout=timeout)
    except RuntimeError:
        return describe(tagged(tag))
    return []


def leftovers(tmp_dir: Path) -> list[str]:
    """Temporary files and directories a command left in its TMPDIR (the Sluice root, if empty, is fine)."""
    found = []
    for path in sorted(tmp_dir.iterdir()) if tmp_dir.is_dir() else []:
        if path.name.startswith("sluice-") and path.is_dir() and path.name[7:].isdigit():
            found += [str(p) for p in sorted(path.iterdir())]
        else:
            found.append(str(path))
    return found
