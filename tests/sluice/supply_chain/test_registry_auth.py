"""Registry authentication: Basic (htpasswd, over HTTPS) and Bearer tokens, on real docker-registry
instances; docker config.json parsing and credential helpers; the challenge parser."""

from __future__ import annotations

import base64
import json
import os
import stat
from pathlib import Path

import pytest

from sluice.errors import SluiceError
from sluice.supply_chain.credentials import find_credentials
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.transport import Transport, is_loopback_host, parse_challenge
from tests.sluice.supply_chain.conftest import AuthRegistry, evidence, push_image

INSECURE = "--allow-insecure-loopback"


@pytest.mark.slow
def test_basic_auth_over_https_end_to_end(
    sluice, htpasswd_registry: AuthRegistry, keypair, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = htpasswd_registry
    config = reg.docker_config(tmp_path / "docker")
    client = RegistryClient(reg.host, docker_config=str(config), ca_file=str(reg.ca_file))
    digest = push_image(client, "sluice/basic", "v1", tmp_path.name.encode())
    image = f"{reg.host}/sluice/basic@{digest}"
    # the CLI has no CA option: like other OpenSSL clients it honours SSL_CERT_FILE
    monkeypatch.setenv("SSL_CERT_FILE", str(reg.ca_file))
    ev = tmp_path / "ev.json"
    ev.write_text(json.dumps(evidence(True)))
    signed = sluice("sign", image, "--key", keypair[0], "--attest", ev, "--docker-config", config.parent)
    assert signed.code == 0, signed.err
    ok = sluice("verify", image, "--key", keypair[1], "--attestation", "sluice", "--docker-config", config)
    assert ok.code == 0, ok.err

    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    anonymous = sluice("verify", image, "--key", keypair[1], "--docker-config", empty)
    assert anonymous.code == 2 and "requires credentials and docker config has none" in anonymous.err
    wrong = reg.docker_config(tmp_path / "wrong", password="nope")
    refused = sluice("verify", image, "--key", keypair[1], "--docker-config", wrong)
    assert refused.code == 2 and "refused the credentials" in refused.err


@pytest.mark.slow
def test_https_registry_with_an_untrusted_certificate_is_refused(
    sluice, htpasswd_registry: AuthRegistry, keypair, tmp_path: Path
) -> None:
    image = f"{htpasswd_registry.host}/sluice/basic@sha256:{'1' * 64}"
    result = sluice(
        "verify", image, "--key", keypair[1], "--docker-config", htpasswd_registry.docker_config(tmp_path)
    )
    assert result.code == 2
    assert "CERTIFICATE_VERIFY_FAILED" in result.err or "certificate verify failed" in result.err


@pytest.mark.slow
def test_bearer_token_flow_end_to_end(sluice, token_registry: AuthRegistry, keypair, tmp_path: Path) -> None:
    reg = token_registry
    config = reg.docker_config(tmp_path / "docker")
    client = RegistryClient(reg.host, docker_config=str(config), allow_insecure_loopback=True)
    digest = push_image(client, "sluice/token", "v1", tmp_path.name.encode())
    assert client.transport.tokens, "the registry should have sent a Bearer challenge"
    image = f"{reg.host}/sluice/token@{digest}"
    signed = sluice("sign", image, "--key", keypair[0], "--docker-config", config, INSECURE)
    assert signed.code == 0, signed.err
    ok = sluice("verify", image, "--key", keypair[1], "--docker-config", config, INSECURE)
    assert ok.code == 0, ok.err

    empty = tmp_path / "empty.json"
    empty.write_text("{}")
    anonymous = sluice("verify", image, "--key", keypair[1], "--docker-config", empty, INSECURE)
    assert anonymous.code == 2
    assert "refused access to repository:sluice/token:pull" in anonymous.err
    wrong = reg.docker_config(tmp_path / "wrong", password="nope")
    refused = sluice("verify", image, "--key", keypair[1], "--docker-config", wrong, INSECURE)
    assert refused.code == 2 and "token server" in refused.err and "refused the credentials" in refused.err


def test_token_realm_over_plain_http_is_refused_unless_loopback_was_allowed() -> None:
    client = Transport("registry.example.com")
    with pytest.raises(SluiceError, match="not HTTPS; refusing"):
        client._fetch_token({"realm": "http://auth.example.com/token", "service": "x"}, "repository:a:pull")
    loopback = Transport("127.0.0.1:5000")  # loopback, but the flag was not given
    with pytest.raises(SluiceError, match="not HTTPS; refusing"):
        loopback._fetch_token({"realm": "http://127.0.0.1:1/token"}, "repository:a:pull")


def test_insecure_flag_only_downgrades_loopback() -> None:
    assert RegistryClient("127.0.0.1:5000", allow_insecure_loopback=True).base == "http://127.0.0.1:5000"
    assert RegistryClient("localhost:5000", allow_insecure_loopback=True).base == "http://localhost:5000"
    assert RegistryClient("[::1]:5000", allow_insecure_loopback=True).base == "http://[::1]:5000"
    assert RegistryClient("10.0.0.1:5000", allow_insecure_loopback=True).base == "https://10.0.0.1:5000"
    assert RegistryClient("127.0.0.1:5000").base == "https://127.0.0.1:5000"
    assert not is_loopback_host("127.example.com")


@pytest.mark.parametrize(
    ("header", "scheme", "params"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
            "bearer",
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:library/busybox:pull",
            },
        ),
        (
            'Bearer realm="https://ghcr.io/token", service="ghcr.io", scope="repository:a/b:pull,push"',
            "bearer",
            {"realm": "https://ghcr.io/token", "service": "ghcr.io", "scope": "repository:a/b:pull,push"},
        ),
        ('Basic realm="Registry Realm"', "basic", {"realm": "Registry Realm"}),
        (
            'Bearer realm="https://r/token",error="insufficient_scope",scope="repository:x:pull"',
            "bearer",
            {"realm": "https://r/token", "error": "insufficient_scope", "scope": "repository:x:pull"},
        ),
        ('Bearer realm="a\\"b",service=unquoted', "bearer", {"realm": 'a"b', "service": "unquoted"}),
    ],
)
def test_parse_challenge(header: str, scheme: str, params: dict) -> None:
    assert parse_challenge(header) == (scheme, params)


def _config(tmp_path: Path, doc: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return str(path)


def test_docker_config_entries(tmp_path: Path) -> None:
    auth = base64.b64encode(b"user:pa:ss").decode()
    config = _config(
        tmp_path,
        {
            "auths": {
                "https://index.docker.io/v1/": {"auth": auth},
                "reg.example.com:5000": {"username": "u", "password": "p"},
                "https://ghcr.io": {"identitytoken": "abc"},
            }
        },
    )
    assert find_credentials("docker.io", config) == ("user", "pa:ss")
    assert find_credentials("reg.example.com:5000", config) == ("u", "p")
    assert find_credentials("quay.io", config) is None
    with pytest.raises(SluiceError, match="holds a token"):
        find_credentials("ghcr.io", config)
    with pytest.raises(SluiceError, match="docker config not found"):
        find_credentials("quay.io", str(tmp_path / "missing.json"))
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(SluiceError, match="not readable JSON"):
        find_credentials("quay.io", str(tmp_path / "broken.json"))


def test_docker_credential_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The docker-credential-* protocol: `get` with the server on stdin, JSON on stdout."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-sluicetest"
    helper.write_text(
        "#!/bin/sh\nread server\n"
        'if [ "$server" = "reg.example.com" ]; then\n'
        '  printf \'{"ServerURL":"%s","Username":"helper-user","Secret":"helper-secret"}\' "$server"\n'
        "else\n  echo 'credentials not found in native keychain'; exit 1\nfi\n"
    )
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    config = _config(tmp_path, {"credHelpers": {"reg.example.com": "sluicetest"}, "credsStore": "sluicetest"})
    assert find_credentials("reg.example.com", config) == ("helper-user", "helper-secret")
    assert find_credentials("other.example.com", config) is None  # store says "not found"
    missing = _config(tmp_path, {"credsStore": "nosuchhelper"})
    with pytest.raises(SluiceError, match="docker-credential-nosuchhelper is not on PATH"):
        find_credentials("reg.example.com", missing)
