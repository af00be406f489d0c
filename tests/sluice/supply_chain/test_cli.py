"""CLI input handling that needs no registry: keys, passwords, files."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from sluice.supply_chain import keys

IMAGE = f"127.0.0.1:1/x/y@sha256:{'a' * 64}"


def test_keygen_writes_a_cosign_pair_and_refuses_to_overwrite(sluice, tmp_path: Path) -> None:
    first = sluice("keygen", "--out-prefix", tmp_path / "cosign")
    assert first.code == 0
    key, pub = tmp_path / "cosign.key", tmp_path / "cosign.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert key.read_text().startswith("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
    assert keys.key_fingerprint(
        keys.load_private_key(key.read_bytes(), b"correct horse")
    ) == keys.key_fingerprint(keys.load_public_key(pub.read_bytes()))
    before = key.read_bytes()
    again = sluice("keygen", "--out-prefix", tmp_path / "cosign")
    assert again.code == 2 and "refusing to overwrite" in again.err
    assert key.read_bytes() == before
    assert sluice("keygen", "--out-prefix", tmp_path / "cosign", "--force").code == 0
    assert key.read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cosign.key", "cosign.pub"]  # no temp files left


def test_keygen_without_password_source_is_refused(
    sluice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COSIGN_PASSWORD")
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    result = sluice("keygen", "--out-prefix", tmp_path / "k")
    assert result.code == 2 and "set COSIGN_PASSWORD" in result.err
    assert not (tmp_path / "k.key").exists()


def test_empty_password_is_allowed_like_cosign(
    sluice, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "")
    assert sluice("keygen", "--out-prefix", tmp_path / "k").code == 0
    keys.load_private_key((tmp_path / "k.key").read_bytes(), b"")


def test_bad_key_files_are_named(sluice, keypair, tmp_path: Path) -> None:
    key, pub = keypair
    wrong = sluice("verify", IMAGE, "--key", key)
    assert wrong.code == 2 and f"public key {key}: expected exactly one PEM 'PUBLIC KEY' block" in wrong.err
    missing = sluice("verify", IMAGE, "--key", tmp_path / "nope.pub")
    assert missing.code == 2 and "cannot read public key" in missing.err
    signing_with_pub = sluice("sign", IMAGE, "--key", pub)
    assert (
        signing_with_pub.code == 2
        and f"private key {pub}: unsupported private key PEM type" in signing_with_pub.err
    )


def test_sign_option_combinations(sluice, keypair, tmp_path: Path) -> None:
    only = sluice("sign", IMAGE, "--key", keypair[0], "--attest-only")
    assert only.code == 2 and "--attest-only needs --attest" in only.err
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    result = sluice("sign", IMAGE, "--key", keypair[0], "--attest", bad)
    assert result.code == 2 and "not a JSON object" in result.err
