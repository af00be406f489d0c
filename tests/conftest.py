"""Session-wide real services and helpers for the test suite.

Heavy services (PostgreSQL, the MLflow tracking server, the OCI registry) start once per test
session; tests that need them ask for the fixture. Readiness is awaited by polling the service
itself with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """Where upstream read-only data lives: $SLUICE_SHARED_DIR, else ../shared beside the repo."""
    return Path(os.environ.get("SLUICE_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"shared upstream data not found at {root} (set SLUICE_SHARED_DIR)")
    return root


@pytest.fixture(scope="session")
def crds_dir(shared_dir: Path) -> Path:
    path = shared_dir / "schemas" / "crds"
    if not path.is_dir():
        pytest.skip(f"upstream CRD schemas not found at {path}")
    return path


@pytest.fixture(scope="session")
def cosign_fixtures(shared_dir: Path) -> Path:
    path = shared_dir / "fixtures" / "cosign-interop"
    if not path.is_dir():
        pytest.skip(f"cosign interop fixtures not found at {path}")
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], bool], what: str, timeout: float = 90.0, proc=None) -> None:
    """Poll `check` until it is true; fail early if the process we wait on has died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what}: process exited with {proc.returncode} before it was ready")
        if check():
            return
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not ready after {timeout:.0f}s")


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status < 500
    except (urllib.error.URLError, OSError):
        return False


def _as_postgres(cmd: list[str]) -> list[str]:
    """initdb refuses to run as root; drop to the postgres user when we are root."""
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _pg_bin(name: str) -> str:
    for candidate in (Path("/usr/lib/postgresql/15/bin") / name,):
        if candidate.exists():
            return str(candidate)
    found = shutil.which(name)
    if not found:
        pytest.skip(f"PostgreSQL tool {name} not installed")
    return found


@pytest.fixture(scope="session")
def postgres() -> Iterator[dict]:
    """A throwaway PostgreSQL 15 cluster on a free loopback port, trust auth, for this session."""
    # Not under pytest's tmp dir: that one is private to root, and the server runs as postgres.
    base = Path(tempfile.mkdtemp(prefix="sluice-pg-"))
    data = base / "data"
    data.mkdir()
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
        shutil.chown(data, "postgres")
    subprocess.run(
        _as_postgres([_pg_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = base / "pg.log"
    if os.geteuid() == 0:
        log.touch()
        shutil.chown(log, "postgres")
    opts = f"-p {port} -k {data} -c listen_addresses=127.0.0.1"
    subprocess.run(
        _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        yield {"host": "127.0.0.1", "port": port, "user": "postgres"}
    finally:
        subprocess.run(
            _as_postgres([_pg_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
        )
        shutil.rmtree(base, ignore_errors=True)


def create_database(pg: dict, name: str) -> str:
    """Create a database and return its SQLAlchemy URL (psycopg2 driver, see README)."""
    subprocess.run(
        [_pg_bin("createdb"), "-h", pg["host"], "-p", str(pg["port"]), "-U", pg["user"], name],
        check=True,
        capture_output=True,
    )
    return f"postgresql+psycopg2://{pg['user']}@{pg['host']}:{pg['port']}/{name}"


def start_mlflow_server(
    backend_uri: str, artifacts: Path, log_path: Path, port: int | None = None
) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on `port` (default: a free one) once its /health answers; (process, URL)."""
    port = port or free_port()
    log = log_path.open("wb")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", backend_uri,
            "--artifacts-destination", str(artifacts),
            "--serve-artifacts",
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/health"), "mlflow server", timeout=120, proc=proc)
    except RuntimeError as exc:
        proc.kill()
        raise RuntimeError(f"{exc}\n{log_path.read_text(errors='replace')[-3000:]}") from exc
    return proc, url


@pytest.fixture(scope="session")
def mlflow_server(postgres: dict, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on PostgreSQL with an on-disk artifact store; yields its URL."""
    base = tmp_path_factory.mktemp("mlflow-pg")
    backend = create_database(postgres, "mlflow")
    proc, url = start_mlflow_server(backend, base / "artifacts", base / "server.log")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry (distribution v2) on loopback; yields `127.0.0.1:PORT`."""
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    base = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = base / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: warn\n"
        "storage:\n  filesystem:\n    rootdirectory: " + str(base / "data") + "\n"
        "  delete:\n    enabled: true\n"
        "http:\n  addr: 127.0.0.1:" + str(port) + "\n"
    )
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/v2/"), "oci registry", timeout=30, proc=proc)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return out.stdout.strip()


GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Sluice Test",
    "GIT_AUTHOR_EMAIL": "test@sluice.invalid",
    "GIT_COMMITTER_NAME": "Sluice Test",
    "GIT_COMMITTER_EMAIL": "test@sluice.invalid",
}


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commits made by tests (and by the code under test) need an identity on a fresh machine."""
    for key, value in GIT_IDENTITY.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(autouse=True)
def _no_leaked_mlflow_uri() -> Iterator[None]:
    """Keep one test's MLflow target from redirecting the next one.

    `mlflow.set_tracking_uri` also writes MLFLOW_TRACKING_URI into os.environ (for subprocesses),
    and `sluice run` honours that variable, so a test (or a module fixture) that points MLflow at
    the server would otherwise send a later test's registrations there. Cleared before and after
    every test, not restored: no test may depend on an inherited MLflow target.
    """

    def clear() -> None:
        if "mlflow" in sys.modules:
            sys.modules["mlflow"].set_tracking_uri(None)
        for var in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
            os.environ.pop(var, None)

    clear()
    yield
    clear()


@pytest.fixture(scope="session")
def schemas(crds_dir: Path):
    from sluice.lint.crds import load_crds
    from sluice.lint.validate import Schemas

    return Schemas(crds=load_crds(crds_dir), crds_dir=crds_dir)


@pytest.fixture(scope="session")
def validate(schemas):
    """`validate(obj) -> [message]`: the upstream schema's complaints about one object (errors only)."""
    from sluice.lint.validate import validate_object

    def run(obj: dict[str, Any]) -> list[str]:
        return [f"{f.rule}: {f.message}" for f in validate_object(obj, schemas) if f.severity == "error"]

    return run
