"""Keyless (Fulcio certificate + Rekor) verification, offline, as cosign v2 does it.

A test Sigstore (root CA, intermediate, leaf with the Fulcio extensions and an embedded SCT, a CT
log key and a Rekor key) is generated per run by tests/sluice/supply_chain/testpki.py; no key
material is committed. The one real keyless signature in the shared fixtures is checked against the
Sigstore public-good trusted root that the pinned `sigstore` package ships.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from sluice.errors import SluiceError
from sluice.supply_chain.constants import (
    DSSE_MEDIA_TYPE,
    IN_TOTO_STATEMENT_V01,
    PREDICATE_TYPE,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.dirlayout import verify_dir_image
from sluice.supply_chain.keyless import IdentityPolicy
from sluice.supply_chain.layers import verify_attestation_layer, verify_signature_layer
from sluice.supply_chain.payload import build_payload
from sluice.supply_chain.trust import KeylessTrust
from sluice.supply_chain.trust_root import load_trusted_root, parse_trusted_root
from sluice.supply_chain.verdicts import LayerRejected, VerificationError
from tests.sluice.supply_chain import testpki
from tests.sluice.supply_chain.testpki import BUNDLE_ANNOTATION, LocalSigstore

GITHUB = "https://token.actions.githubusercontent.com"
BUILDER = "builder@sluice.test"
DIGEST = "sha256:" + hashlib.sha256(b"an image manifest").hexdigest()
PAYLOAD = build_payload("registry.test/models/credit-default", DIGEST)


@pytest.fixture(scope="module")
def sigstore() -> LocalSigstore:
    return LocalSigstore()


@pytest.fixture(scope="module")
def trust(sigstore: LocalSigstore) -> KeylessTrust:
    root = parse_trusted_root(sigstore.trusted_root(), "test trusted root")
    return KeylessTrust(root, IdentityPolicy(subject=BUILDER, issuer=GITHUB))


def check(annotations: dict[str, str], trust: KeylessTrust, payload: bytes = PAYLOAD) -> dict:
    return verify_signature_layer(
        media_type=SIMPLE_SIGNING_MEDIA_TYPE,
        payload=payload,
        annotations=annotations,
        trust=trust,
        image_digest=DIGEST,
    )


def with_policy(trust: KeylessTrust, **policy: str) -> KeylessTrust:
    return KeylessTrust(trust.root, IdentityPolicy(**policy), trust.require_sct)


# --- accepted ------------------------------------------------------------------------------------------


def test_a_keyless_signature_verifies_offline(sigstore, trust) -> None:
    details = check(testpki.signature_annotations(sigstore, PAYLOAD), trust)
    assert details["identity"] == [BUILDER] and details["issuer"] == GITHUB
    assert details["rekor_log"] == "https://rekor.test" and details["ct_log"] == "https://ctfe.test"
    assert details["integrated_time"].startswith("2026-01-02T00:01")


def test_ci_workflow_identities_match_by_regexp(sigstore, trust) -> None:
    workflow = "https://github.com/sluice/models/.github/workflows/release.yml@refs/heads/main"
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, email=None, uri=workflow)
    anchored = with_policy(trust, subject_regexp=r"^https://github\.com/sluice/models/", issuer=GITHUB)
    assert check(annotations, anchored)["identity"] == [workflow]
    by_issuer = with_policy(trust, subject=workflow, issuer_regexp=r"^https://token\.actions\.")
    assert check(annotations, by_issuer)["issuer"] == GITHUB


def test_a_certificate_with_only_the_legacy_issuer_extension_is_read(sigstore, trust) -> None:
    """Fulcio certificates before 2023 carry 1.3.6.1.4.1.57264.1.1 only."""
    assert check(testpki.signature_annotations(sigstore, PAYLOAD, issuer_v2=None), trust)["issuer"] == GITHUB


# --- refused, each for its own reason -------------------------------------------------------------------


def test_wrong_identity(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, email="intruder@sluice.test")
    with pytest.raises(LayerRejected, match=r"identity \['intruder@sluice.test'\] does not match"):
        check(annotations, trust)
    partial = with_policy(trust, subject="builder@sluice.tes", issuer=GITHUB)  # exact means exact
    with pytest.raises(LayerRejected, match="does not match"):
        check(testpki.signature_annotations(sigstore, PAYLOAD), partial)


def test_wrong_issuer(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, issuer="https://accounts.google.com")
    with pytest.raises(
        LayerRejected, match=re.escape("OIDC issuer 'https://accounts.google.com' does not match")
    ):
        check(annotations, trust)


def test_two_different_issuer_extensions_are_refused(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, issuer_v2="https://accounts.google.com")
    with pytest.raises(LayerRejected, match="names two OIDC issuers"):
        check(annotations, trust)


@pytest.mark.parametrize("logged_after", [timedelta(minutes=11), timedelta(minutes=-1)])
def test_signature_logged_outside_the_certificate_validity(sigstore, trust, logged_after) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, logged_after=logged_after)
    with pytest.raises(LayerRejected, match="outside the certificate's validity"):
        check(annotations, trust)


def test_untrusted_root(sigstore, trust) -> None:
    """Same Rekor and CT keys, another CA: the chain annotation cannot smuggle a root in."""
    impostor = LocalSigstore(rekor_key=sigstore.rekor_key, ct_key=sigstore.ct_key)
    annotations = testpki.signature_annotations(impostor, PAYLOAD)
    with pytest.raises(LayerRejected, match="does not chain to a trusted Fulcio CA"):
        check(annotations, trust)


def test_tampered_signed_entry_timestamp(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD)
    bundle = json.loads(annotations[BUNDLE_ANNOTATION])
    moved = dict(bundle, Payload=dict(bundle["Payload"], logIndex=bundle["Payload"]["logIndex"] + 1))
    with pytest.raises(LayerRejected, match="SignedEntryTimestamp does not verify"):
        check({**annotations, BUNDLE_ANNOTATION: json.dumps(moved)}, trust)
    later = dict(
        bundle, Payload=dict(bundle["Payload"], integratedTime=bundle["Payload"]["integratedTime"] + 60)
    )
    with pytest.raises(LayerRejected, match="SignedEntryTimestamp does not verify"):
        check({**annotations, BUNDLE_ANNOTATION: json.dumps(later)}, trust)
    flipped = bytearray(base64.b64decode(bundle["SignedEntryTimestamp"]))
    flipped[-1] ^= 1
    forged = dict(bundle, SignedEntryTimestamp=base64.b64encode(bytes(flipped)).decode())
    with pytest.raises(LayerRejected, match="does not verify"):
        check({**annotations, BUNDLE_ANNOTATION: json.dumps(forged)}, trust)


def test_a_valid_bundle_does_not_cover_another_payload(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD)
    other = build_payload("registry.test/models/other", DIGEST)
    with pytest.raises(LayerRejected, match="other content"):
        check(annotations, trust, payload=other)


def test_an_embedded_sct_is_required_unless_explicitly_ignored(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD, with_sct=False)
    with pytest.raises(LayerRejected, match="no embedded SCT"):
        check(annotations, trust)
    relaxed = KeylessTrust(trust.root, trust.identity, require_sct=False)
    assert check(annotations, relaxed)["ct_log"] is None


def test_a_ca_outside_its_validity_window_does_not_count(sigstore) -> None:
    ended = parse_trusted_root(sigstore.trusted_root(ca_end=sigstore.since + timedelta(hours=1)), "ended")
    annotations = testpki.signature_annotations(sigstore, PAYLOAD)
    with pytest.raises(LayerRejected, match="not valid at"):
        check(annotations, KeylessTrust(ended, IdentityPolicy(subject=BUILDER, issuer=GITHUB)))


def test_a_rekor_key_outside_its_validity_window_does_not_count(sigstore) -> None:
    doc = json.loads(sigstore.trusted_root())
    doc["tlogs"][0]["publicKey"]["validFor"]["end"] = "2026-01-01T12:00:00Z"  # before the signature
    retired = parse_trusted_root(json.dumps(doc).encode(), "retired Rekor key")
    annotations = testpki.signature_annotations(sigstore, PAYLOAD)
    with pytest.raises(
        LayerRejected, match=re.escape("Rekor key https://rekor.test was not valid at integratedTime")
    ):
        check(annotations, KeylessTrust(retired, IdentityPolicy(subject=BUILDER, issuer=GITHUB)))


def test_without_a_rekor_bundle_there_is_no_trusted_time(sigstore, trust) -> None:
    annotations = testpki.signature_annotations(sigstore, PAYLOAD)
    del annotations[BUNDLE_ANNOTATION]
    with pytest.raises(LayerRejected, match="needs the Rekor"):
        check(annotations, trust)


# --- attestations ---------------------------------------------------------------------------------------


def statement(passed: bool = True) -> bytes:
    doc = {
        "_type": IN_TOTO_STATEMENT_V01,
        "predicateType": PREDICATE_TYPE,
        "subject": [{"name": "registry.test/models/credit-default", "digest": {"sha256": DIGEST[7:]}}],
        "predicate": {"passed": passed, "kind": "model"},
    }
    return json.dumps(doc).encode()


@pytest.mark.parametrize("entry", ["dsse", "intoto"])
def test_keyless_attestations(sigstore, trust, entry: str) -> None:
    envelope, annotations = testpki.attestation(sigstore, statement(), PREDICATE_TYPE, entry=entry)
    common = {"media_type": DSSE_MEDIA_TYPE, "envelope": envelope, "image_digest": DIGEST}
    details = verify_attestation_layer(
        **common, annotations=annotations, trust=trust, predicate_type=PREDICATE_TYPE
    )
    assert details["passed"] is True and details["identity"] == [BUILDER]
    stranger = with_policy(trust, subject="someone@sluice.test", issuer=GITHUB)
    with pytest.raises(LayerRejected, match="does not match"):
        verify_attestation_layer(
            **common, annotations=annotations, trust=stranger, predicate_type=PREDICATE_TYPE
        )


# --- the options ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("policy", "message"),
    [
        ({"subject": "a", "subject_regexp": "b", "issuer": "c"}, "exactly one of --certificate-identity"),
        ({"issuer": "c"}, "exactly one of --certificate-identity"),
        ({"subject": "a"}, "exactly one of --certificate-oidc-issuer"),
        ({"subject_regexp": "(", "issuer": "c"}, "is not a regexp"),
    ],
)
def test_identity_options_are_checked(policy: dict, message: str) -> None:
    with pytest.raises(SluiceError, match=message):
        IdentityPolicy(**policy)


def test_trusted_root_files_are_checked(tmp_path: Path) -> None:
    with pytest.raises(SluiceError, match="cannot read trusted root"):
        load_trusted_root(str(tmp_path / "missing.json"))
    wrong = tmp_path / "wrong.json"
    wrong.write_text('{"mediaType": "application/json"}')
    with pytest.raises(SluiceError, match="mediaType"):
        load_trusted_root(str(wrong))


# --- real public-good material --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fulcio_case(cosign_fixtures: Path) -> Path:
    return (
        cosign_fixtures / "containers-image" / "signature" / "fixtures" / "dir-img-cosign-fulcio-rekor-valid"
    )


def test_a_real_fulcio_signature_verifies_against_the_public_good_root(fulcio_case: Path) -> None:
    """The sigstore package's trusted_root.json: Fulcio intermediate, Rekor log key, CT log 2022."""
    root = load_trusted_root(None)
    trust = KeylessTrust(
        root, IdentityPolicy(subject="mitr@redhat.com", issuer="https://github.com/login/oauth")
    )
    summary = verify_dir_image(fulcio_case, trust)
    (signature,) = summary["signatures"]
    assert signature["ct_log"] == "https://ctfe.sigstore.dev/2022"
    assert signature["integrated_time"] == "2023-01-20T20:51:33Z"
    other = KeylessTrust(
        root, IdentityPolicy(subject="mitr@redhat.com", issuer="https://accounts.google.com")
    )
    with pytest.raises(
        VerificationError, match=re.escape("OIDC issuer 'https://github.com/login/oauth' does not match")
    ):
        verify_dir_image(fulcio_case, other)
