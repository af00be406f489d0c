"""Where registry credentials may go: only to the exact origin (scheme, host, port) they belong to,
and never over plain HTTP unless the whole registry is loopback plain HTTP by the explicit flag.

The registries are real TLS servers on loopback with a CA generated at test time
(tests/sluice/supply_chain/hostile_registry.py); the TLS one also answers plain HTTP on the same
port, so a redirect from https://127.0.0.1:PORT to http://127.0.0.1:PORT would be received and
recorded, credentials included.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from sluice.supply_chain import keys
from sluice.supply_chain.constants import SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from sluice.supply_chain.payload import build_payload
from tests.sluice.supply_chain.conftest import make_ca
from tests.sluice.supply_chain.hostile_registry import HostileRegistry

USER, PASSWORD = "robot", "s3cret-for-the-registry-only"
BASIC = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
REPO = "sluice/redirect"


@pytest.fixture
def ca(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1; clients trust it through SSL_CERT_FILE."""
    cert, key, _, _ = make_ca(tmp_path, "loopback-ca")
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def tls_registry(ca: ssl.SSLContext) -> Iterator[HostileRegistry]:
    with HostileRegistry(tls=ca) as registry:
        registry.behaviour.basic_auth = (USER, PASSWORD)
        yield registry


def docker_config(tmp_path: Path, host: str, scheme: str = "https") -> Path:
    path = tmp_path / "docker" / "config.json"
    path.parent.mkdir(exist_ok=True)
    auth = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    path.write_text(json.dumps({"auths": {f"{scheme}://{host}": {"auth": auth}}}))
    return path


def signed(reg: HostileRegistry, tmp_path: Path) -> tuple[str, str, Path]:
    """An image with one valid signature in `reg`; returns (reference, payload digest, public key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    pub = tmp_path / "cosign.pub"
    pub.write_bytes(keys.public_key_pem(key))
    image = reg.add_image(b"redirected")
    payload = build_payload(f"{reg.host}/{REPO}", image)
    digest = reg.add_blob(payload)
    signature = base64.b64encode(key.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
    layer = {
        "mediaType": SIMPLE_SIGNING_MEDIA_TYPE,
        "size": len(payload),
        "digest": digest,
        "annotations": {SIGNATURE_ANNOTATION: signature},
    }
    reg.add_attachment(image, "sig", [layer])
    return f"{reg.host}/{REPO}@{image}", digest, pub


def test_a_tls_registry_redirecting_to_plain_http_on_the_same_port_gets_no_credentials(
    sluice, tls_registry: HostileRegistry, tmp_path: Path
) -> None:
    ref, digest, pub = signed(tls_registry, tmp_path)
    blob_path = f"/v2/{REPO}/blobs/{digest}"
    tls_registry.behaviour.redirects[digest] = f"http://{tls_registry.host}{blob_path}?plain"
    config = docker_config(tmp_path, tls_registry.host)

    result = sluice("verify", ref, "--key", pub, "--docker-config", config)
    seen = tls_registry.behaviour.seen
    assert any(s.scheme == "https" and s.authorization == BASIC for s in seen)  # the credentials exist
    plain = [s for s in seen if s.scheme == "http"]
    assert not [s for s in plain if s.authorization], "credentials went out in clear text"
    assert plain == []  # the downgrade is not followed at all
    assert result.code == 1, result.err  # the only signature could not be read: refused, not bad input
    assert "plain HTTP" in result.err


def test_credentials_stay_with_their_origin_across_redirects(
    sluice, tls_registry: HostileRegistry, ca: ssl.SSLContext, tmp_path: Path
) -> None:
    """Same origin: the credentials follow (the registry needs them). Another origin: they do not."""
    ref, digest, pub = signed(tls_registry, tmp_path)
    config = docker_config(tmp_path, tls_registry.host)
    with HostileRegistry(tls=ca) as storage:
        storage.behaviour.blobs[digest] = tls_registry.behaviour.blobs[digest]
        tls_registry.behaviour.redirects[digest] = f"https://{storage.host}/v2/{REPO}/blobs/{digest}?sig=1"
        result = sluice("verify", ref, "--key", pub, "--docker-config", config)
        assert result.code == 0, result.err
        assert storage.behaviour.seen and all(s.authorization is None for s in storage.behaviour.seen)

    same = f"https://{tls_registry.host}/v2/{REPO}/blobs/{digest}?followed"
    tls_registry.behaviour.redirects[digest] = same
    assert sluice("verify", ref, "--key", pub, "--docker-config", config).code == 0
    followed = [s for s in tls_registry.behaviour.seen if s.path.endswith("?followed")]
    assert followed and followed[-1].authorization == BASIC


def test_plain_http_redirects_are_followed_only_within_an_explicitly_insecure_loopback_registry(
    sluice, tmp_path: Path
) -> None:
    with HostileRegistry() as reg, HostileRegistry() as storage:
        ref, digest, pub = signed(reg, tmp_path)
        storage.behaviour.blobs[digest] = reg.behaviour.blobs[digest]
        reg.behaviour.basic_auth = (USER, PASSWORD)
        config = docker_config(tmp_path, reg.host, scheme="http")
        reg.behaviour.redirects[digest] = f"http://{storage.host}/v2/{REPO}/blobs/{digest}"
        loopback = sluice("verify", ref, "--key", pub, "--docker-config", config, "--allow-insecure-loopback")
        assert loopback.code == 0, loopback.err
        assert all(s.authorization is None for s in storage.behaviour.seen)

        reg.behaviour.redirects[digest] = f"http://storage.example.invalid/v2/{REPO}/blobs/{digest}"
        away = sluice("verify", ref, "--key", pub, "--docker-config", config, "--allow-insecure-loopback")
        assert away.code == 1 and "plain HTTP" in away.err


def test_origins_compare_scheme_host_and_default_port() -> None:
    """https://reg and http://reg share host:port text on default ports; they are different origins."""
    from sluice.supply_chain.transport import Origin, Transport

    assert Origin.of("https://reg.example/v2/") == Origin.of("https://REG.example:443/v2/x")
    assert Origin.of("https://reg.example/v2/") != Origin.of("http://reg.example/v2/")
    assert Origin.of("http://reg.example/") == Origin.of("http://reg.example:80/")
    assert Origin.of("https://reg.example/") != Origin.of("https://reg.example:8443/")
    transport = Transport("reg.example", credentials=(USER, PASSWORD))
    transport.tokens["repository:a:pull"] = "t0ken"
    scope = "repository:a:pull"
    assert transport.authorization_for(scope, "https://reg.example/v2/a/blobs/x") == {
        "Authorization": "Bearer t0ken"
    }
    assert transport.authorization_for(scope, "https://reg.example:443/v2/a/blobs/x") != {}
    assert transport.authorization_for(scope, "http://reg.example/v2/a/blobs/x") == {}
    assert transport.authorization_for(scope, "https://reg.example.evil/v2/") == {}
    assert transport.authorization_for(scope, "https://cdn.example/blob") == {}
