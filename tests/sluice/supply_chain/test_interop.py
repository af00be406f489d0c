"""Offline interoperability: cosign-produced signatures, attestations and keys from upstream fixtures.

Expected verdicts are those of /work/shared/fixtures/cosign-interop/SOURCES.md (containers/image,
sigstore/cosign). The fixtures are read in place through the `cosign_fixtures` fixture, never copied.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from cryptography import x509

from sluice.supply_chain import dsse, keys, tlog
from sluice.supply_chain.constants import DSSE_MEDIA_TYPE, PREDICATE_TYPE
from sluice.supply_chain.dirlayout import read_sigstore_signature, verify_dir_image
from sluice.supply_chain.layers import verify_attestation_layer, verify_signature_layer
from sluice.supply_chain.payload import build_payload
from sluice.supply_chain.trust import KeyTrust
from sluice.supply_chain.trust_root import rekor_key_root
from sluice.supply_chain.verdicts import LayerRejected, VerificationError

SLSA_V02 = "https://slsa.dev/provenance/v0.2"


@pytest.fixture(scope="module")
def fx(cosign_fixtures: Path) -> Path:
    return cosign_fixtures / "containers-image" / "signature" / "fixtures"


def pub(fx: Path, name: str) -> bytes:
    return (fx / name).read_bytes()


def key(fx: Path, name: str, rekor: str | None = None) -> KeyTrust:
    return KeyTrust.from_pem(pub(fx, name), rekor_key_pem=pub(fx, rekor) if rekor else None)


# --- containers/image dir-img-cosign-* ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("case", "name", "count"),
    [
        ("dir-img-cosign-valid", "cosign.pub", 1),
        ("dir-img-cosign-valid-2", "cosign.pub", 2),
        ("dir-img-cosign-valid-with-tag", "cosign.pub", 1),
        ("dir-img-cosign-key-rekor-valid", "cosign2.pub", 1),
    ],
)
def test_valid_cases_verify(fx: Path, case: str, name: str, count: int) -> None:
    summary = verify_dir_image(fx / case, key(fx, name))
    assert len(summary["signatures"]) == count
    assert summary["skipped"] == []


def test_valid_with_tag_keeps_the_containers_image_optional_fields(fx: Path) -> None:
    summary = verify_dir_image(fx / "dir-img-cosign-valid-with-tag", key(fx, "cosign.pub"))
    signature = summary["signatures"][0]
    assert signature["docker_reference"].endswith("/skopeo-signed:tag")
    assert signature["optional"]["creator"] == "containers/image 5.21.2-dev"


@pytest.mark.parametrize(
    "case",
    [
        "dir-img-cosign-valid",
        "dir-img-cosign-valid-2",
        "dir-img-cosign-valid-with-tag",
        "dir-img-cosign-key-rekor-valid",
    ],
)
def test_valid_cases_are_refused_with_the_other_key(fx: Path, case: str) -> None:
    other = "cosign.pub" if case.endswith("key-rekor-valid") else "cosign2.pub"
    with pytest.raises(VerificationError, match="does not verify with the given key"):
        verify_dir_image(fx / case, key(fx, other))


def test_key_rekor_valid_set_verifies_with_rekor_pub(fx: Path) -> None:
    summary = verify_dir_image(fx / "dir-img-cosign-key-rekor-valid", key(fx, "cosign2.pub", "rekor.pub"))
    assert isinstance(summary["signatures"][0]["rekor"]["log_index"], int)


def test_key_rekor_valid_set_is_refused_with_another_rekor_key(fx: Path) -> None:
    with pytest.raises(VerificationError, match=r"names log [0-9a-f]+, which the --rekor-key does not hold"):
        verify_dir_image(fx / "dir-img-cosign-key-rekor-valid", key(fx, "cosign2.pub", "cosign.pub"))


def test_requiring_rekor_refuses_signatures_without_a_bundle(fx: Path) -> None:
    with pytest.raises(VerificationError, match="no Rekor bundle"):
        verify_dir_image(fx / "dir-img-cosign-valid", key(fx, "cosign.pub", "rekor.pub"))


def test_mixed_unknown_key_signature_is_rejected_and_does_not_count(fx: Path) -> None:
    case = fx / "dir-img-cosign-mixed"
    # signature-1 is unknown-cosign-key.signature: no key in the fixtures verifies it
    assert (case / "signature-1").read_bytes() == (fx / "unknown-cosign-key.signature").read_bytes()
    mime, payload, annotations = read_sigstore_signature(case / "signature-1")
    digest = "sha256:" + hashlib.sha256((case / "manifest.json").read_bytes()).hexdigest()
    for name in ("cosign.pub", "cosign2.pub"):
        with pytest.raises(LayerRejected, match="does not verify with the given key"):
            verify_signature_layer(
                media_type=mime,
                payload=payload,
                annotations=annotations,
                trust=key(fx, name),
                image_digest=digest,
            )
    # the image as a whole passes on its other, valid signature, and reports the skipped one
    summary = verify_dir_image(case, key(fx, "cosign.pub"))
    assert [s["file"] for s in summary["signatures"]] == ["signature-2"]
    assert summary["skipped"][0].startswith("signature-1: signature does not verify")


def test_modified_manifest_is_refused_for_digest_mismatch(fx: Path) -> None:
    with pytest.raises(
        VerificationError, match=r"signature is for manifest sha256:634a8f35.*manifest modified"
    ):
        verify_dir_image(fx / "dir-img-cosign-modified-manifest", key(fx, "cosign.pub"))


def test_schema1_manifest_is_refused(fx: Path) -> None:
    with pytest.raises(VerificationError, match="schema 1"):
        verify_dir_image(fx / "dir-img-cosign-manifest-digest-error", key(fx, "cosign.pub"))


def test_missing_manifest_is_refused(fx: Path) -> None:
    with pytest.raises(VerificationError, match=r"no manifest\.json"):
        verify_dir_image(fx / "dir-img-cosign-no-manifest", key(fx, "cosign.pub"))


def test_other_attachment_is_refused_as_not_a_signature(fx: Path) -> None:
    with pytest.raises(VerificationError, match=r"not a signature attachment \(mediaType text/plain\)"):
        verify_dir_image(fx / "dir-img-cosign-other-attachment", key(fx, "cosign.pub"))


def test_internal_valid_signature_equals_the_dir_fixture(fx: Path, cosign_fixtures: Path) -> None:
    internal = cosign_fixtures / "containers-image" / "signature" / "internal" / "testdata"
    assert (internal / "valid.signature").read_bytes() == (
        fx / "dir-img-cosign-valid" / "signature-1"
    ).read_bytes()


def test_build_payload_reproduces_cosign_bytes_exactly(fx: Path) -> None:
    _, payload, _ = read_sigstore_signature(fx / "dir-img-cosign-valid" / "signature-1")
    built = build_payload(
        "192.168.64.2:5000/cosign-signed-single-sample",
        "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00",
    )
    assert built == payload


def test_rekor_testdata_set_verifies_offline(fx: Path, cosign_fixtures: Path) -> None:
    internal = cosign_fixtures / "containers-image" / "signature" / "internal" / "testdata"
    cert = x509.load_pem_x509_certificate((internal / "rekor-cert").read_bytes())
    payload = (internal / "rekor-payload").read_bytes()
    signature = base64.b64decode((internal / "rekor-sig").read_text().strip())
    root = rekor_key_root(keys.load_public_key((internal / "rekor.pub").read_bytes()))
    entry = tlog.verify_bundle((internal / "rekor-set").read_text(), root)
    assert entry.integrated_time.year >= 2021 and entry.kind == "hashedrekord"
    tlog.check_entry_binds(entry, artifact=payload, signature=signature, signer=cert)
    tlog.check_entry_binds(entry, artifact=payload, signature=signature, signer=cert.public_key())
    with pytest.raises(LayerRejected, match="other content"):
        tlog.check_entry_binds(entry, artifact=payload + b" ", signature=signature, signer=cert)


def test_keyless_fulcio_signature_verifies_with_its_certificate_key(fx: Path) -> None:
    """The raw signature check only (the full keyless verdict is in test_keyless.py)."""
    mime, payload, annotations = read_sigstore_signature(
        fx / "dir-img-cosign-fulcio-rekor-valid" / "signature-1"
    )
    cert = x509.load_pem_x509_certificate(annotations["dev.sigstore.cosign/certificate"].encode())
    digest = (
        "sha256:"
        + hashlib.sha256(
            (fx / "dir-img-cosign-fulcio-rekor-valid" / "manifest.json").read_bytes()
        ).hexdigest()
    )
    verify_signature_layer(
        media_type=mime,
        payload=payload,
        annotations=annotations,
        trust=KeyTrust(cert.public_key()),
        image_digest=digest,
    )


# --- cosign DSSE envelopes (verify_blob_attestation_test.go) ----------------------------------------


@pytest.fixture(scope="module")
def blob_dir(cosign_fixtures: Path) -> Path:
    return cosign_fixtures / "cosign" / "extracted" / "verify_blob_attestation"


ENVELOPES = {
    "blobSLSAProvenanceSignature": True,
    "dssePredicateMultipleSubjects": True,
    "dssePredicateEmptySubject": False,
    "dssePredicateMissingSha256": False,
    "dssePredicateMultipleSubjectsInvalid": False,
}


@pytest.mark.parametrize(("name", "accepted"), ENVELOPES.items())
def test_dsse_envelopes(blob_dir: Path, name: str, accepted: bool) -> None:
    public_key = keys.load_public_key((blob_dir / "cosign.pub").read_bytes())
    raw = (blob_dir / f"{name}.dsse.json").read_bytes()
    envelope = dsse.parse_envelope(raw)
    # every envelope is genuinely signed: the rejects are about what the statement says
    assert keys.verify_bytes(
        public_key, envelope.signatures[0], dsse.pae(envelope.payload_type, envelope.payload)
    )
    blob_digest = "sha256:" + hashlib.sha256((blob_dir / "blob").read_bytes()).hexdigest()
    kwargs = {
        "media_type": DSSE_MEDIA_TYPE,
        "envelope": raw,
        "annotations": {},
        "trust": KeyTrust(public_key),
        "image_digest": blob_digest,
    }
    if accepted:
        assert verify_attestation_layer(**kwargs, predicate_type=SLSA_V02)["predicate_type"] == SLSA_V02
    else:
        with pytest.raises(LayerRejected, match="subject"):
            verify_attestation_layer(**kwargs, predicate_type=SLSA_V02)
    with pytest.raises(LayerRejected, match=r"subject|predicateType"):
        verify_attestation_layer(**kwargs, predicate_type=PREDICATE_TYPE)


def test_dsse_envelope_with_a_changed_payload_is_refused(blob_dir: Path) -> None:
    doc = json.loads((blob_dir / "blobSLSAProvenanceSignature.dsse.json").read_bytes())
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["builder"]["id"] = "attacker"
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    with pytest.raises(LayerRejected, match="DSSE signature does not verify"):
        verify_attestation_layer(
            media_type=DSSE_MEDIA_TYPE,
            envelope=json.dumps(doc).encode(),
            annotations={},
            trust=KeyTrust.from_pem((blob_dir / "cosign.pub").read_bytes()),
            image_digest="sha256:" + hashlib.sha256((blob_dir / "blob").read_bytes()).hexdigest(),
            predicate_type=SLSA_V02,
        )
