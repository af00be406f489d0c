"""Session-wide real services and helpers for the test suite.

Heavy services (PostgreSQL, the MLflow tracking server, the OCI registry) start once per test
session; tests that need them ask for the fixture. Readiness is awaited by polling the service
itself with a deadline, never by sleeping a fixed time.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """Where upstream read-only data lives: $SLUICE_SHARED_DIR, else ../shared beside the repo."""
    return Path(os.environ.get("SLUICE_SHARED_DIR", REPO_ROOT.parent / "shared")).resolve()


# CI must test everything: there the shared upstream data has to be present, and a test that needs it
# fails instead of skipping. On a laptop (or a clone without ../shared) such tests skip, saying why.
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def missing_shared(what: str, path: Path) -> NoReturn:
    """Fail (in CI) or skip (elsewhere) a test that needs upstream data which is not there."""
    message = f"{what} not found at {path} (set SLUICE_SHARED_DIR to the shared upstream data)"
    if IN_CI:
        pytest.fail(f"CI=true but {message}; CI must run every test", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        missing_shared("shared upstream data", root)
    return root


@pytest.fixture(scope="session")
def crds_dir(shared_dir: Path) -> Path:
    """The upstream CRD files as a directory (what `--crds DIR` reads)."""
    path = shared_dir / "schemas" / "crds"
    if not path.is_dir():
        missing_shared("upstream CRD schemas", path)
    return path


@pytest.fixture(scope="session")
def cosign_fixtures(shared_dir: Path) -> Path:
    path = shared_dir / "fixtures" / "cosign-interop"
    if not path.is_dir():
        missing_shared("cosign interop fixtures", path)
    return path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_directory(directory: Path) -> Iterator[str]:
    """A plain HTTP file server for `directory` on loopback (a schema mirror); yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="crd-mirror", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="session")
def crd_mirror(crds_dir: Path) -> Iterator[str]:
    """The shared CRD files served over loopback HTTP, laid out like a SLUICE_CRD_MIRROR."""
    with serve_directory(crds_dir) as url:
        yield url


@pytest.fixture(scope="session")
def crd_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's schema cache: filled once through the loopback mirror (`pinned_crds`)."""
    return tmp_path_factory.mktemp("crd-cache")


@pytest.fixture(scope="session")
def pinned_crds(crd_cache: Path, tmp_path_factory: pytest.TempPathFactory):
    """The pinned schemas as `sluice lint` resolves them: fetched over loopback from the shared copy
    (a real download, every sha256 checked against sluice/lint/crd-pins.yaml) into the session cache.

    Without ../shared, a user cache warmed by an earlier online `sluice lint` serves instead (read
    offline, still sha256-checked); with neither, the test skips (fails in CI).
    """
    from sluice.errors import SluiceError
    from sluice.lint import pins
    from sluice.lint.crds import CrdSource

    all_pins = pins.load_pins()
    crds = shared_root() / "schemas" / "crds"
    if crds.is_dir():
        with serve_directory(crds) as mirror:
            return CrdSource.pinned(pins.resolve(all_pins, mirror=mirror, cache=crd_cache), all_pins)
    try:
        return CrdSource.pinned(pins.resolve(all_pins, offline=True), all_pins)
    except SluiceError:
        missing_shared("upstream CRD schemas (and no warm schema cache for the pinned ones)", crds)


@pytest.fixture(scope="session")
def pinned_lint_env(pinned_crds) -> dict[str, str]:
    """Environment for a `sluice lint` subprocess that uses the warm pinned-schema cache (no network):
    the user's own CRD settings are dropped so they cannot change what the test sees."""
    from sluice.lint import pins

    env = {k: v for k, v in os.environ.items() if k not in ("SLUICE_CRDS_DIR", pins.MIRROR_ENV)}
    return {**env, pins.CACHE_ENV: str(pinned_crds.directory)}


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


def start_registry(base: Path) -> tuple[subprocess.Popen, str]:
    """Debian's docker-registry (distribution v2) on a free loopback port, storing under `base`."""
    binary = shutil.which("docker-registry")
    if not binary:
        raise FileNotFoundError("docker-registry not installed (apt-get install docker-registry)")
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
    except RuntimeError:
        proc.kill()
        raise
    return proc, f"127.0.0.1:{port}"


@pytest.fixture(scope="session")
def oci_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's docker-registry (distribution v2) on loopback; yields `127.0.0.1:PORT`."""
    if not shutil.which("docker-registry"):
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    proc, address = start_registry(tmp_path_factory.mktemp("registry"))
    try:
        yield address
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def redis_ping(port: int, password: str) -> bool:
    """True once the server answers an authenticated PING (raw RESP: no client library needed)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            answer = b""
            while b"\r\n" not in answer.partition(b"\r\n")[2]:  # both replies, however they arrive
                chunk = sock.recv(64)
                if not chunk:
                    break
                answer += chunk
            return answer.endswith(b"+PONG\r\n")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Debian's redis-server on loopback, password generated now, no persistence; the online store of
    the feature-store tests. Yields host, port, password and the Feast connection string."""
    binary = shutil.which("redis-server")
    if not binary:
        if IN_CI:
            pytest.fail("CI=true but redis-server is not installed (apt-get install redis-server)")
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    import secrets

    base = tmp_path_factory.mktemp("redis")
    port, password = free_port(), secrets.token_hex(16)  # hex: Feast json-decodes the password field
    log = (base / "redis.log").open("wb")
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(base), "--save", "",
         "--appendonly", "no", "--requirepass", password, "--daemonize", "no"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: redis_ping(port, password), "redis-server", timeout=30, proc=proc)
        yield {
            "host": "127.0.0.1", "port": port, "password": password,
            "connection": f"127.0.0.1:{port},password={password}",
        }
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
def schemas(pinned_crds):
    """What `sluice lint` validates with: the pinned CRDs from the cache (see `pinned_crds`)."""
    from sluice.lint.validate import Schemas

    return Schemas(
        crds=pinned_crds.load(),
        crds_dir=pinned_crds.directory,
        katib_swagger=pinned_crds.document("katib/swagger.json"),
    )


@pytest.fixture(scope="session")
def validate(schemas):
    """`validate(obj) -> [message]`: the upstream schema's complaints about one object (errors only)."""
    from sluice.lint.validate import validate_object

    def run(obj: dict[str, Any]) -> list[str]:
        return [f"{f.rule}: {f.message}" for f in validate_object(obj, schemas) if f.severity == "error"]

    return run
