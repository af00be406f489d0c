"""Supply-chain fixtures: images pushed to a real registry, keys made at test time, and two more
real docker-registry instances with authentication (htpasswd over TLS, and Bearer tokens).

The token registry is the real docker-registry configured with `auth: token`; only the token
*issuer* is a tiny in-process HTTP server (as Docker Hub's auth.docker.io would be), which signs
JWTs with a key whose certificate the registry trusts. Everything else is the real protocol.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import hashlib
import http.server
import io
import ipaddress
import json
import os
import shutil
import ssl
import subprocess
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from sluice.cli import main as sluice_main
from sluice.supply_chain.constants import OCI_CONFIG, OCI_MANIFEST
from sluice.supply_chain.oci import RegistryClient
from tests.conftest import free_port, wait_until

PASSWORD = "correct horse"


# --- running the CLI in-process --------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def sluice(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
    """Run `sluice ARGS...` in-process; COSIGN_PASSWORD is set as the keys below expect."""
    monkeypatch.setenv("COSIGN_PASSWORD", PASSWORD)

    def run(*args: str) -> Result:
        capsys.readouterr()
        code = sluice_main([str(a) for a in args])
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def keypair(tmp_path: Path, sluice) -> tuple[Path, Path]:
    result = sluice("keygen", "--out-prefix", tmp_path / "cosign")
    assert result.code == 0, result.err
    return tmp_path / "cosign.key", tmp_path / "cosign.pub"


@pytest.fixture
def other_keypair(tmp_path: Path, sluice) -> tuple[Path, Path]:
    (tmp_path / "other").mkdir()
    result = sluice("keygen", "--out-prefix", tmp_path / "other" / "cosign")
    assert result.code == 0, result.err
    return tmp_path / "other" / "cosign.key", tmp_path / "other" / "cosign.pub"


# --- a small image, assembled by hand -----------------------------------------------------------------


def tiny_layer(content: bytes) -> bytes:
    """A gzipped tar with one file; fixed mtime/owner so the same content gives the same digest."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("model/README")
        info.size, info.mtime, info.mode = len(content), 0, 0o644
        tar.addfile(info, io.BytesIO(content))
    return gzip.compress(raw.getvalue(), mtime=0)


def push_image(client: RegistryClient, repository: str, tag: str, content: bytes) -> str:
    """Push an OCI image (config + one layer) under `tag`; return the manifest digest."""
    layer = tiny_layer(content)
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/true"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        separators=(",", ":"),
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "size": len(config),
                "digest": client.put_blob(repository, config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "size": len(layer),
                    "digest": client.put_blob(repository, layer),
                }
            ],
        },
        separators=(",", ":"),
    ).encode()
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST)


def evidence(passed: bool = True, **extra) -> dict:
    """Gate evidence shaped like gates/evidence (schema_version sluice.dev/evidence/v1)."""
    return {
        "schema_version": "sluice.dev/evidence/v1",
        "kind": "model",
        "passed": passed,
        "created": "2026-01-01T00:00:00Z",
        "subject": {"model": "credit-default", "version": "3", "code_commit": "0" * 40},
        "checks": [],
        "summary": "all checks passed" if passed else "p99 latency above threshold",
        "notes": [],
        **extra,
    }


# --- certificates, htpasswd, JWT ------------------------------------------------------------------------


def make_ca(directory: Path, name: str) -> tuple[Path, Path, ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A self-signed P-256 certificate for 127.0.0.1/localhost, usable as CA and as server cert."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path, key, cert


def bcrypt_hash(password: str) -> str:
    """bcrypt via the C library's crypt(3) (libxcrypt on Debian), so no extra Python dependency."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            import crypt  # Python 3.11: deprecated, still present
        except ImportError:
            pytest.skip("no crypt module for bcrypt htpasswd hashes")
    if crypt.METHOD_BLOWFISH not in crypt.methods:
        pytest.skip("the C library's crypt(3) has no bcrypt")
    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))  # noqa: S324 - bcrypt cost 4: fast tests


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_jwt(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate, claims: dict) -> str:
    header = {
        "typ": "JWT",
        "alg": "ES256",
        "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()],
    }
    signing_input = _b64url(json.dumps(header).encode()) + "." + _b64url(json.dumps(claims).encode())
    r, s = decode_dss_signature(key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256())))
    return signing_input + "." + _b64url(r.to_bytes(32, "big") + s.to_bytes(32, "big"))


# --- registries with authentication ---------------------------------------------------------------------


@dataclass
class AuthRegistry:
    host: str
    username: str
    password: str
    ca_file: Path | None
    base: Path

    def docker_config(self, directory: Path, password: str | None = None) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        auth = base64.b64encode(f"{self.username}:{password or self.password}".encode()).decode()
        path = directory / "config.json"
        path.write_text(json.dumps({"auths": {f"https://{self.host}": {"auth": auth}}}))
        return path


def _start_registry(base: Path, config: str, ready) -> subprocess.Popen:
    binary = shutil.which("docker-registry")
    if not binary:
        pytest.skip("docker-registry not installed (apt-get install docker-registry)")
    (base / "config.yml").write_text(config)
    log = (base / "registry.log").open("wb")
    proc = subprocess.Popen([binary, "serve", str(base / "config.yml")], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(ready, "authenticated registry", timeout=30, proc=proc)
    except RuntimeError as exc:
        proc.kill()
        raise RuntimeError(f"{exc}\n{(base / 'registry.log').read_text(errors='replace')[-2000:]}") from exc
    return proc


def _status(url: str, context: ssl.SSLContext | None = None) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2, context=context) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """docker-registry over HTTPS (test CA) with htpasswd (bcrypt) Basic auth."""
    base = tmp_path_factory.mktemp("registry-htpasswd")
    cert, key, _, _ = make_ca(base, "registry")
    (base / "htpasswd").write_text(f"sluice:{bcrypt_hash('s3cret-pass')}\n")
    port = free_port()
    config = (
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
        f"auth:\n  htpasswd:\n    realm: sluice-test\n    path: {base / 'htpasswd'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n"
    )
    context = ssl.create_default_context(cafile=str(cert))
    proc = _start_registry(base, config, lambda: _status(f"https://127.0.0.1:{port}/v2/", context) == 401)
    try:
        yield AuthRegistry(f"127.0.0.1:{port}", "sluice", "s3cret-pass", cert, base)
    finally:
        _stop(proc)


class _TokenHandler(http.server.BaseHTTPRequestHandler):
    server_version = "sluice-test-token/1"

    def log_message(self, *args) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        issuer = self.server.issuer  # type: ignore[attr-defined]
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        header = self.headers.get("Authorization", "")
        user = None
        if header.startswith("Basic "):
            name, _, password = base64.b64decode(header[6:]).decode().partition(":")
            if (name, password) != (issuer["username"], issuer["password"]):
                self.send_response(401)
                self.end_headers()
                return
            user = name
        access = []
        for scope in query.get("scope", []):
            kind, name, actions = scope.split(":")
            granted = actions.split(",") if user else []  # anonymous callers get nothing
            access.append({"type": kind, "name": name, "actions": granted})
        now = int(time.time())
        claims = {
            "iss": issuer["issuer"],
            "sub": user or "",
            "aud": query.get("service", [""])[0],
            "exp": now + 300,
            "nbf": now - 10,
            "iat": now,
            "jti": os.urandom(8).hex(),
            "access": access,
        }
        body = json.dumps({"token": issue_jwt(issuer["key"], issuer["cert"], claims)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    """docker-registry with `auth: token` (plain HTTP on loopback), and its token issuer."""
    base = tmp_path_factory.mktemp("registry-token")
    cert_path, _, key, cert = make_ca(base, "token-signer")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _TokenHandler)
    server.issuer = {  # type: ignore[attr-defined]
        "issuer": "sluice-test-issuer",
        "username": "robot",
        "password": "t0ken-pass",
        "key": key,
        "cert": cert,
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    port = free_port()
    config = (
        "version: 0.1\nlog:\n  level: warn\n"
        f"storage:\n  filesystem:\n    rootdirectory: {base / 'data'}\n"
        "auth:\n  token:\n"
        f"    realm: http://127.0.0.1:{server.server_address[1]}/token\n"
        "    service: sluice-test-registry\n    issuer: sluice-test-issuer\n"
        f"    rootcertbundle: {cert_path}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = _start_registry(base, config, lambda: _status(f"http://127.0.0.1:{port}/v2/") == 401)
    try:
        yield AuthRegistry(f"127.0.0.1:{port}", "robot", "t0ken-pass", None, base)
    finally:
        _stop(proc)
        server.shutdown()
