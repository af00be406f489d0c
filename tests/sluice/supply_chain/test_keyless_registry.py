"""`sluice verify` with cosign's keyless flags, against a real docker-registry holding keyless
`.sig`/`.att` layers made with the test Sigstore (tests/sluice/supply_chain/testpki.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sluice.supply_chain.constants import (
    DSSE_MEDIA_TYPE,
    IN_TOTO_STATEMENT_V01,
    PREDICATE_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.payload import build_payload
from sluice.supply_chain.refs import attachment_tag, parse_image_ref
from tests.sluice.supply_chain import testpki
from tests.sluice.supply_chain.conftest import push_image

pytestmark = pytest.mark.slow
INSECURE = "--allow-insecure-loopback"
GITHUB = "https://token.actions.githubusercontent.com"
WORKFLOW = "https://github.com/sluice/models/.github/workflows/deliver.yml@refs/heads/main"
REPO = "sluice/keyless"


@pytest.fixture(scope="module")
def sigstore() -> testpki.LocalSigstore:
    return testpki.LocalSigstore()


@pytest.fixture
def root_file(sigstore, tmp_path: Path) -> Path:
    path = tmp_path / "trusted_root.json"
    path.write_bytes(sigstore.trusted_root())
    return path


def keyless_image(client: RegistryClient, registry: str, sigstore, label: bytes, passed: bool = True) -> str:
    """Push an image, a keyless signature and a keyless gate-evidence attestation; return IMAGE@DIGEST."""
    from sluice.supply_chain.sign import append_attachment

    digest = push_image(client, REPO, "v1", label)
    ref = parse_image_ref(f"{registry}/{REPO}@{digest}")
    payload = build_payload(ref.docker_reference, digest)
    annotations = testpki.signature_annotations(sigstore, payload, email=None, uri=WORKFLOW)
    append_attachment(
        client, ref, attachment_tag(digest, "sig"), payload, SIMPLE_SIGNING_MEDIA_TYPE, annotations
    )
    statement = {
        "_type": IN_TOTO_STATEMENT_V01,
        "predicateType": PREDICATE_TYPE,
        "subject": [{"name": ref.docker_reference, "digest": {"sha256": digest[7:]}}],
        "predicate": {"passed": passed, "kind": "model", "summary": "p99 above threshold"},
    }
    envelope, att = testpki.attestation(
        sigstore, json.dumps(statement).encode(), PREDICATE_TYPE, email=None, uri=WORKFLOW
    )
    append_attachment(client, ref, attachment_tag(digest, "att"), envelope, DSSE_MEDIA_TYPE, att)
    return str(ref)


def identity(*extra: str) -> list[str]:
    return ["--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", GITHUB, *extra]


def test_keyless_signature_and_attestation_verify(sluice, oci_registry, sigstore, root_file) -> None:
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    image = keyless_image(client, oci_registry, sigstore, b"keyless ok")
    args = ["verify", image, "--trusted-root", root_file, INSECURE]
    ok = sluice(*args, *identity("--attestation", "sluice"))
    assert ok.code == 0, ok.err
    assert f"by identity {WORKFLOW}" in ok.out and "with passing gate evidence" in ok.out
    regexp = sluice(
        *args,
        "--certificate-identity-regexp",
        r"^https://github\.com/sluice/models/\.github/workflows/",
        "--certificate-oidc-issuer",
        GITHUB,
    )
    assert regexp.code == 0, regexp.err

    stranger = sluice(
        *args, "--certificate-identity", "https://github.com/evil/x", "--certificate-oidc-issuer", GITHUB
    )
    assert stranger.code == 1 and "does not match" in stranger.err
    assert len(stranger.err.strip().splitlines()) == 1
    google = sluice(
        *args, "--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", "https://accounts.google.com"
    )
    assert google.code == 1 and "OIDC issuer" in google.err


def test_keyless_failing_evidence_blocks(sluice, oci_registry, sigstore, root_file) -> None:
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    image = keyless_image(client, oci_registry, sigstore, b"keyless failing", passed=False)
    result = sluice(
        "verify", image, "--trusted-root", root_file, INSECURE, *identity("--attestation", "sluice")
    )
    assert result.code == 1 and "gate evidence says passed=false" in result.err


def test_keyless_with_another_trusted_root_is_refused(sluice, oci_registry, sigstore, tmp_path: Path) -> None:
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    image = keyless_image(client, oci_registry, sigstore, b"keyless other root")
    other = tmp_path / "other-root.json"
    other.write_bytes(testpki.LocalSigstore().trusted_root())
    result = sluice("verify", image, "--trusted-root", other, INSECURE, *identity())
    assert result.code == 1 and "trusted root does not hold" in result.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "cosign.pub", *identity()], "either --key or a keyless identity"),
        ([], "--key cosign.pub, or --certificate-identity"),
        (["--certificate-identity", WORKFLOW], "exactly one of --certificate-oidc-issuer"),
        (["--rekor-key", "rekor.pub", *identity()], "--rekor-key goes with --key"),
        ([*identity(), "--trusted-root", "/nonexistent/root.json"], "cannot read trusted root"),
    ],
)
def test_keyless_usage_errors(sluice, args: list[str], message: str) -> None:
    result = sluice("verify", f"127.0.0.1:1/x/y@sha256:{'a' * 64}", *args)
    assert result.code == 2 and message in result.err, result.err
