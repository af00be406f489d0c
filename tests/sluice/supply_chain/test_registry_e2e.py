"""End to end against a real docker-registry: push, sign, attest, verify, then tamper.

Each test pushes its own small image (unique content, so a unique digest), signs it with keys made
by `sluice keygen` at test time, and drives `sluice sign` / `sluice verify` like a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.supply_chain.constants import (
    OCI_MANIFEST,
    PREDICATE_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.refs import attachment_tag
from sluice.supply_chain.trust import KeyTrust
from sluice.supply_chain.verdicts import VerificationError
from sluice.supply_chain.verify import verify_image
from tests.sluice.supply_chain.conftest import PASSWORD, evidence, push_image

pytestmark = pytest.mark.slow
INSECURE = "--allow-insecure-loopback"


@pytest.fixture
def client(oci_registry: str) -> RegistryClient:
    return RegistryClient(oci_registry, allow_insecure_loopback=True)


@pytest.fixture
def image(request: pytest.FixtureRequest, oci_registry: str, client: RegistryClient) -> str:
    """A freshly pushed image, returned as REGISTRY/REPO@sha256:..."""
    digest = push_image(client, "sluice/demo", "v1", request.node.nodeid.encode())
    return f"{oci_registry}/sluice/demo@{digest}"


def write_evidence(tmp_path: Path, passed: bool, name: str = "evidence.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(evidence(passed)))
    return path


def test_sign_attest_verify_round_trip(sluice, image: str, keypair, tmp_path: Path) -> None:
    key, pub = keypair
    signed = sluice("sign", image, "--key", key, "--attest", write_evidence(tmp_path, True), INSECURE)
    assert signed.code == 0, signed.err
    assert ".sig" in signed.out and ".att" in signed.out

    verified = sluice("verify", image, "--key", pub, "--attestation", "sluice", INSECURE)
    assert verified.code == 0, verified.err
    assert verified.out.startswith(f"verified {image}: 1 signature(s)")
    assert "passing gate evidence" in verified.out

    summary = verify_image(
        image,
        KeyTrust.from_pem(pub.read_bytes()),
        attestation_type=PREDICATE_TYPE,
        allow_insecure_loopback=True,
    )
    assert summary["digest"] == image.split("@")[1]
    assert summary["signatures"][0]["docker_reference"] == image.split("@")[0]
    assert summary["attestation"]["verified"][0]["passed"] is True
    assert summary["attestation"]["verified"][0]["evidence_kind"] == "model"


def test_the_installed_console_script_gives_the_exit_codes(image: str, keypair, oci_registry: str) -> None:
    """The real `sluice` entry point, as CI and users run it: 1 for refused, 2 for bad input."""
    key, pub = keypair
    env = {**os.environ, "COSIGN_PASSWORD": PASSWORD}
    sluice_bin = [shutil.which("sluice")] if shutil.which("sluice") else [sys.executable, "-m", "sluice"]
    unsigned = subprocess.run(
        [*sluice_bin, "verify", image, "--key", pub, INSECURE], capture_output=True, text=True, env=env
    )
    assert unsigned.returncode == 1
    assert "refused: image" in unsigned.stderr and "is not signed" in unsigned.stderr
    assert len(unsigned.stderr.strip().splitlines()) == 1
    sign = subprocess.run(
        [*sluice_bin, "sign", image, "--key", key, INSECURE], capture_output=True, text=True, env=env
    )
    assert sign.returncode == 0, sign.stderr
    ok = subprocess.run(
        [*sluice_bin, "verify", image, "--key", pub, INSECURE], capture_output=True, text=True, env=env
    )
    assert ok.returncode == 0, ok.stderr
    by_tag = subprocess.run(
        [*sluice_bin, "verify", f"{oci_registry}/sluice/demo:v1", "--key", pub, INSECURE],
        capture_output=True,
        text=True,
    )
    assert by_tag.returncode == 2
    assert "has no digest" in by_tag.stderr


def test_plain_http_needs_the_loopback_flag(sluice, image: str, keypair) -> None:
    key, pub = keypair
    assert sluice("sign", image, "--key", key, INSECURE).code == 0
    result = sluice("verify", image, "--key", pub)
    assert result.code == 2
    assert "--allow-insecure-loopback" in result.err


def test_unreachable_registry_is_an_input_error(sluice, keypair) -> None:
    from tests.conftest import free_port

    _, pub = keypair
    result = sluice("verify", f"127.0.0.1:{free_port()}/x/y@sha256:{'a' * 64}", "--key", pub, INSECURE)
    assert result.code == 2
    assert "cannot reach registry" in result.err


def test_retag_verify_by_tag_is_refused(
    sluice, image: str, keypair, client: RegistryClient, oci_registry: str
) -> None:
    key, pub = keypair
    assert sluice("sign", image, "--key", key, INSECURE).code == 0
    digest = image.split("@")[1]
    manifest = client.get_manifest("sluice/demo", digest)
    client.put_manifest("sluice/demo", "retagged", manifest.body, manifest.media_type)
    refused = sluice("verify", f"{oci_registry}/sluice/demo:retagged", "--key", pub, INSECURE)
    assert refused.code == 2 and "has no digest" in refused.err
    assert sluice("verify", image, "--key", pub, INSECURE).code == 0  # the digest still verifies


def test_replaced_signature_layer_is_refused(sluice, image: str, keypair, client: RegistryClient) -> None:
    key, pub = keypair
    assert sluice("sign", image, "--key", key, INSECURE).code == 0
    tag = attachment_tag(image.split("@")[1], "sig")
    sig_manifest = client.get_manifest("sluice/demo", tag).json()
    layer = sig_manifest["layers"][0]
    payload = client.get_blob("sluice/demo", layer["digest"])
    forged = payload.replace(b'"optional":null', b'"optional":{"approved":"by attacker"}')
    assert forged != payload
    layer["digest"], layer["size"] = client.put_blob("sluice/demo", forged), len(forged)
    client.put_manifest("sluice/demo", tag, json.dumps(sig_manifest).encode(), OCI_MANIFEST)

    result = sluice("verify", image, "--key", pub, INSECURE)
    assert result.code == 1
    assert "signature does not verify with the given key" in result.err


def test_different_manifest_under_the_same_tag_is_refused(
    sluice, image: str, keypair, client: RegistryClient, oci_registry: str
) -> None:
    key, pub = keypair
    assert sluice("sign", image, "--key", key, INSECURE).code == 0
    old = image.split("@")[1]
    new = push_image(client, "sluice/demo", "v1", b"a different model, same tag " + old.encode())
    assert client.get_manifest("sluice/demo", "v1").digest == new != old
    moved = f"{oci_registry}/sluice/demo@{new}"
    unsigned = sluice("verify", moved, "--key", pub, INSECURE)
    assert unsigned.code == 1 and "is not signed" in unsigned.err

    # copying the old signature next to the new digest does not help: the payload names the old one
    old_sig = client.get_manifest("sluice/demo", attachment_tag(old, "sig"))
    client.put_manifest("sluice/demo", attachment_tag(new, "sig"), old_sig.body, old_sig.media_type)
    copied = sluice("verify", moved, "--key", pub, INSECURE)
    assert copied.code == 1
    assert f"signature is for manifest {old}, not {new}" in copied.err
    assert sluice("verify", image, "--key", pub, INSECURE).code == 0


def test_signature_by_another_key_is_refused(sluice, image: str, keypair, other_keypair) -> None:
    assert sluice("sign", image, "--key", other_keypair[0], INSECURE).code == 0
    result = sluice("verify", image, "--key", keypair[1], INSECURE)
    assert result.code == 1
    assert "no valid signature" in result.err and "does not verify with the given key" in result.err
    # a second signer (both keys) is fine: the signature by our key counts, the other is reported
    assert sluice("sign", image, "--key", keypair[0], INSECURE).code == 0
    summary = verify_image(image, KeyTrust.from_pem(keypair[1].read_bytes()), allow_insecure_loopback=True)
    assert len(summary["signatures"]) == 1 and len(summary["skipped"]) == 1


def test_non_signature_attachment_is_refused(sluice, image: str, keypair, client: RegistryClient) -> None:
    text = b"this is not a signature"
    blob = client.put_blob("sluice/demo", text)
    config = client.put_blob("sluice/demo", b"{}")
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": 2, "digest": config},
        "layers": [
            {
                "mediaType": "text/plain",
                "size": len(text),
                "digest": blob,
                "annotations": {SIGNATURE_ANNOTATION: "AAAA"},
            }
        ],
    }
    client.put_manifest(
        "sluice/demo", attachment_tag(image.split("@")[1], "sig"), json.dumps(manifest).encode(), OCI_MANIFEST
    )
    result = sluice("verify", image, "--key", keypair[1], INSECURE)
    assert result.code == 1
    assert "not a signature attachment (mediaType text/plain)" in result.err


def test_failing_evidence_attestation_blocks(sluice, image: str, keypair, tmp_path: Path) -> None:
    key, pub = keypair
    assert sluice("sign", image, "--key", key, "--attest", write_evidence(tmp_path, True), INSECURE).code == 0
    failing = write_evidence(tmp_path, False, "failing.json")
    assert sluice("sign", image, "--key", key, "--attest", failing, "--attest-only", INSECURE).code == 0
    result = sluice("verify", image, "--key", pub, "--attestation", "sluice", INSECURE)
    assert result.code == 1
    assert "gate evidence says passed=false (p99 latency above threshold)" in result.err
    assert sluice("verify", image, "--key", pub, INSECURE).code == 0  # the signature itself is fine
    with pytest.raises(VerificationError, match="passed=false"):
        verify_image(
            image,
            KeyTrust.from_pem(pub.read_bytes()),
            attestation_type=PREDICATE_TYPE,
            allow_insecure_loopback=True,
        )


def test_wrong_predicate_type_is_refused(sluice, image: str, keypair, tmp_path: Path) -> None:
    key, pub = keypair
    other = "https://slsa.dev/provenance/v1"
    assert (
        sluice(
            "sign", image, "--key", key, "--attest", write_evidence(tmp_path, True), "--type", other, INSECURE
        ).code
        == 0
    )
    result = sluice("verify", image, "--key", pub, "--attestation", "sluice", INSECURE)
    assert result.code == 1
    assert f"no valid {PREDICATE_TYPE} attestation" in result.err
    assert f"predicateType annotation '{other}'" in result.err  # not even fetched
    assert sluice("verify", image, "--key", pub, "--attestation", other, INSECURE).code == 0


def test_attestation_by_another_key_is_refused(
    sluice, image: str, keypair, other_keypair, tmp_path: Path
) -> None:
    assert sluice("sign", image, "--key", keypair[0], INSECURE).code == 0
    ev = write_evidence(tmp_path, True)
    assert (
        sluice("sign", image, "--key", other_keypair[0], "--attest", ev, "--attest-only", INSECURE).code == 0
    )
    result = sluice("verify", image, "--key", keypair[1], "--attestation", "sluice", INSECURE)
    assert result.code == 1
    assert "DSSE signature does not verify with the given key" in result.err


def test_attestation_copied_from_another_image_is_refused(
    sluice, image: str, keypair, client: RegistryClient, oci_registry: str, tmp_path: Path
) -> None:
    key, pub = keypair
    other = push_image(client, "sluice/demo", "other", b"another image " + image.encode())
    other_ref = f"{oci_registry}/sluice/demo@{other}"
    assert (
        sluice("sign", other_ref, "--key", key, "--attest", write_evidence(tmp_path, True), INSECURE).code
        == 0
    )
    assert sluice("sign", image, "--key", key, INSECURE).code == 0
    att = client.get_manifest("sluice/demo", attachment_tag(other, "att"))
    client.put_manifest("sluice/demo", attachment_tag(image.split("@")[1], "att"), att.body, att.media_type)
    result = sluice("verify", image, "--key", pub, "--attestation", "sluice", INSECURE)
    assert result.code == 1
    assert f"no in-toto subject has digest {image.split('@')[1]}" in result.err


def test_missing_attestation_is_refused(sluice, image: str, keypair) -> None:
    assert sluice("sign", image, "--key", keypair[0], INSECURE).code == 0
    result = sluice("verify", image, "--key", keypair[1], "--attestation", "sluice", INSECURE)
    assert result.code == 1 and "has no attestations" in result.err


def test_ed25519_keys_sign_as_ed25519ph(sluice, image: str, tmp_path: Path) -> None:
    assert sluice("keygen", "--out-prefix", tmp_path / "ed", "--algorithm", "ed25519").code == 0
    assert sluice("sign", image, "--key", tmp_path / "ed.key", INSECURE).code == 0
    assert sluice("verify", image, "--key", tmp_path / "ed.pub", INSECURE).code == 0
    pure = sluice("verify", image, "--key", tmp_path / "ed.pub", "--ed25519-mode", "pure", INSECURE)
    assert pure.code == 1 and "does not verify" in pure.err


def test_signature_layout_is_cosigns(sluice, image: str, keypair, client: RegistryClient) -> None:
    """What Kyverno's Cosign verifier reads: an OCI manifest at sha256-<hex>.sig, one layer per signature."""
    assert sluice("sign", image, "--key", keypair[0], INSECURE).code == 0
    manifest = client.get_manifest("sluice/demo", attachment_tag(image.split("@")[1], "sig"))
    doc = manifest.json()
    assert doc["mediaType"] == OCI_MANIFEST
    (layer,) = doc["layers"]
    assert layer["mediaType"] == SIMPLE_SIGNING_MEDIA_TYPE
    assert set(layer["annotations"]) == {SIGNATURE_ANNOTATION}
    payload = json.loads(client.get_blob("sluice/demo", layer["digest"]))
    assert payload["critical"]["image"]["docker-manifest-digest"] == image.split("@")[1]


def test_sign_refuses_tags_and_missing_images(sluice, keypair, oci_registry: str) -> None:
    tag = sluice("sign", f"{oci_registry}/sluice/demo:v1", "--key", keypair[0], INSECURE)
    assert tag.code == 2 and "has no digest" in tag.err
    missing = sluice("sign", f"{oci_registry}/sluice/demo@sha256:{'0' * 64}", "--key", keypair[0], INSECURE)
    assert missing.code == 2 and "not found in the registry" in missing.err


def test_wrong_password_is_an_input_error(
    sluice, image: str, keypair, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "not it")
    result = sluice("sign", image, "--key", keypair[0], INSECURE)
    assert result.code == 2 and "wrong password" in result.err
