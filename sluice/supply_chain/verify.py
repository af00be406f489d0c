"""Verify cosign tag-based signatures and gate-evidence attestations of an image, by digest.

The verdicts mirror cosign and Kyverno so that `sluice promote` refuses what admission would refuse:
- a signature counts only if it verifies with the given key over the exact payload bytes, the
  payload is a cosign container image signature, and it names the image digest;
- signatures by other keys, other attachments and broken layers are skipped (reported), and the
  image is refused when none is left;
- an attestation counts only if its DSSE signature verifies, its statement is in-toto, names the
  image digest as a subject and has the predicate type asked for. For the Sluice predicate, every
  counted attestation must say `passed: true` (Kyverno evaluates its condition on each of them),
  so a later failing gate blocks the image.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sluice.errors import SluiceError
from sluice.supply_chain import dsse, keys
from sluice.supply_chain.constants import (
    ATTESTATION_TAG_SUFFIX,
    BUNDLE_ANNOTATION,
    DSSE_MEDIA_TYPE,
    IMAGE_MANIFEST_TYPES,
    PREDICATE_TYPE,
    SIGNATURE_ANNOTATION,
    SIGNATURE_TAG_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.oci import BLOB_LIMIT, RegistryClient, RegistryIntegrityError, sha256_digest
from sluice.supply_chain.payload import PayloadError, parse_payload
from sluice.supply_chain.refs import attachment_tag, parse_image_ref

ATTACHMENT_LAYER_LIMIT = 16 * 1024 * 1024


class VerificationError(SluiceError):
    """The image is not acceptable: unsigned, signed by another key, tampered with, or failing evidence."""


class LayerRejected(Exception):
    """One attachment layer does not count; the message says why (collected into the verdict)."""


@dataclass
class _Layer:
    index: int
    media_type: str
    digest: str
    annotations: dict[str, str]
    data: bytes | None = None
    problems: list[str] = field(default_factory=list)


def manifest_digest(body: bytes) -> str:
    """The digest a signature must name for this manifest; schema-1 manifests have none we accept.

    Schema 1 digests are computed over the manifest with its JWS signatures stripped (containers/image
    does the same and fails on a broken JWS); cosign never signs them, so they are refused outright.
    """
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise VerificationError("image manifest is not JSON") from exc
    if isinstance(doc, dict) and doc.get("schemaVersion") == 1:
        raise VerificationError("image manifest is Docker schema 1, which cosign signatures do not cover")
    return sha256_digest(body)


# --- one signature --------------------------------------------------------------------------------------


def _decode_signature(annotations: dict[str, str]) -> tuple[str, bytes]:
    value = annotations.get(SIGNATURE_ANNOTATION)
    if not value:
        raise LayerRejected(f"no {SIGNATURE_ANNOTATION} annotation")
    try:  # Go's base64 decoder skips CR/LF, and cosign writes wrapped signatures for big keys
        return value, base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LayerRejected("signature annotation is not base64") from exc


def verify_rekor_bundle(
    bundle_json: str, rekor_key: keys.PublicKey, payload: bytes, signature_b64: str, signer: keys.PublicKey
) -> dict[str, Any]:
    """Check a `dev.sigstore.cosign/bundle` offline: the SET signs this entry, and the entry is ours.

    SET = ECDSA(rekor key) over the canonical JSON (sorted keys, no spaces) of `Payload`; the
    hashedrekord body must carry sha256(payload), this signature and this public key.
    """
    try:
        bundle = json.loads(bundle_json)
        entry = bundle["Payload"]
        set_sig = base64.b64decode(bundle["SignedEntryTimestamp"], validate=True)
        body = json.loads(base64.b64decode(entry["body"], validate=True))
        spec = body["spec"]
    except (KeyError, TypeError, ValueError) as exc:
        raise LayerRejected(f"Rekor bundle is malformed: {exc}") from exc
    canonical = json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()
    if not keys.verify_bytes(rekor_key, set_sig, canonical):
        raise LayerRejected("Rekor SignedEntryTimestamp does not verify with the Rekor key")
    if body.get("kind") != "hashedrekord":
        raise LayerRejected(f"Rekor entry kind {body.get('kind')!r} is not hashedrekord")
    try:
        data_hash = spec["data"]["hash"]
        entry_sig = base64.b64decode(spec["signature"]["content"], validate=True)
        entry_key = base64.b64decode(spec["signature"]["publicKey"]["content"], validate=True)
    except (KeyError, TypeError, ValueError) as exc:
        raise LayerRejected(f"Rekor hashedrekord entry is malformed: {exc}") from exc
    if (
        data_hash.get("algorithm") != "sha256"
        or data_hash.get("value") != hashlib.sha256(payload).hexdigest()
    ):
        raise LayerRejected("Rekor entry is for other data than this payload")
    if entry_sig != base64.b64decode(signature_b64):
        raise LayerRejected("Rekor entry holds another signature")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    try:  # key-signed entries log the public key, keyless ones the Fulcio certificate
        if keys.pem_blocks(entry_key)[0][0] == "CERTIFICATE":
            logged = x509.load_pem_x509_certificate(entry_key).public_key().public_bytes(der, spki)
        else:
            logged = keys.load_public_key(entry_key).public_bytes(der, spki)
    except (SluiceError, ValueError) as exc:
        raise LayerRejected(f"Rekor entry public key: {exc}") from exc
    if logged != signer.public_bytes(der, spki):
        raise LayerRejected("Rekor entry was logged for another public key")
    return {"log_index": entry.get("logIndex"), "integrated_time": entry.get("integratedTime")}


def verify_signature_layer(
    *,
    media_type: str,
    payload: bytes,
    annotations: dict[str, str],
    public_key: keys.PublicKey,
    image_digest: str,
    ed25519_mode: keys.Ed25519Mode = "ph",
    rekor_key: keys.PublicKey | None = None,
) -> dict[str, Any]:
    """Verdict on one `.sig` layer; raises LayerRejected naming the first thing that is wrong."""
    if media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise LayerRejected(f"not a signature attachment (mediaType {media_type or 'missing'})")
    signature_b64, signature = _decode_signature(annotations)
    if not keys.verify_bytes(public_key, signature, payload, ed25519_mode):
        raise LayerRejected("signature does not verify with the given key (another key, or payload changed)")
    try:
        parsed = parse_payload(payload)
    except PayloadError as exc:
        raise LayerRejected(f"signed payload is not a cosign image signature: {exc}") from exc
    if parsed.manifest_digest != image_digest:
        raise LayerRejected(
            f"signature is for manifest {parsed.manifest_digest}, not {image_digest} "
            "(manifest modified or signature copied)"
        )
    result: dict[str, Any] = {"docker_reference": parsed.docker_reference, "optional": parsed.optional}
    if rekor_key is not None:
        bundle = annotations.get(BUNDLE_ANNOTATION)
        if not bundle:
            raise LayerRejected("no Rekor bundle, but a Rekor key was given (tlog required)")
        result["rekor"] = verify_rekor_bundle(bundle, rekor_key, payload, signature_b64, public_key)
    return result


# --- one attestation ------------------------------------------------------------------------------------


class EvidenceFailed(Exception):
    """A genuine attestation of the Sluice predicate says the gate did not pass."""


def verify_attestation_layer(
    *,
    media_type: str,
    envelope: bytes,
    public_key: keys.PublicKey,
    image_digest: str,
    predicate_type: str,
    ed25519_mode: keys.Ed25519Mode = "ph",
) -> dict[str, Any]:
    """Verdict on one `.att` layer. LayerRejected: does not count. EvidenceFailed: counts and fails."""
    if media_type != DSSE_MEDIA_TYPE:
        raise LayerRejected(f"not an attestation (mediaType {media_type or 'missing'})")
    try:
        env = dsse.parse_envelope(envelope)
    except dsse.StatementError as exc:
        raise LayerRejected(str(exc)) from exc
    signed = dsse.pae(env.payload_type, env.payload)
    if not any(keys.verify_bytes(public_key, sig, signed, ed25519_mode) for sig in env.signatures):
        raise LayerRejected("DSSE signature does not verify with the given key")
    try:
        statement = dsse.check_statement(
            env.payload_type, env.payload, image_digest.split(":", 1)[1], predicate_type
        )
    except dsse.StatementError as exc:
        raise LayerRejected(str(exc)) from exc
    predicate = statement.get("predicate")
    result: dict[str, Any] = {"predicate_type": predicate_type}
    if predicate_type == PREDICATE_TYPE:
        if not isinstance(predicate, dict):
            raise EvidenceFailed("gate evidence predicate is not a JSON object")
        if predicate.get("passed") is not True:
            raise EvidenceFailed(
                f"gate evidence says passed={json.dumps(predicate.get('passed'))}"
                + (f" ({predicate['summary']})" if isinstance(predicate.get("summary"), str) else "")
            )
        result.update(
            passed=True,
            evidence_kind=predicate.get("kind"),
            schema_version=predicate.get("schema_version"),
            subject=predicate.get("subject"),
        )
    return result


# --- the image --------------------------------------------------------------------------------------


def _layers(client: RegistryClient, repository: str, tag: str, what: str) -> list[_Layer] | None:
    manifest = client.get_manifest(repository, tag)
    if manifest is None:
        return None
    if manifest.media_type not in IMAGE_MANIFEST_TYPES:
        raise VerificationError(
            f"{what} tag {tag} holds a {manifest.media_type or 'untyped'} manifest, not cosign's"
        )
    layers = []
    for index, entry in enumerate(manifest.json().get("layers") or [], start=1):
        entry = entry if isinstance(entry, dict) else {}
        layer = _Layer(
            index,
            str(entry.get("mediaType", "")),
            str(entry.get("digest", "")),
            dict(entry.get("annotations") or {}),
        )
        size = entry.get("size")
        if not isinstance(size, int) or size > ATTACHMENT_LAYER_LIMIT:
            layer.problems.append(f"size {size!r} not acceptable")
        else:
            try:
                layer.data = client.get_blob(
                    repository, layer.digest, limit=min(BLOB_LIMIT, ATTACHMENT_LAYER_LIMIT)
                )
            except RegistryIntegrityError as exc:
                layer.problems.append(str(exc))
            if layer.data is None and not layer.problems:
                layer.problems.append("blob missing from the registry")
        layers.append(layer)
    return layers


def _summarise(reasons: list[str]) -> str:
    return "; ".join(reasons) if reasons else "no layers"


def verify_image(
    image_ref: str,
    public_key_pem: bytes,
    *,
    attestation_type: str | None = None,
    docker_config: str | None = None,
    allow_insecure_loopback: bool = False,
    ed25519_mode: keys.Ed25519Mode = "ph",
    rekor_public_key_pem: bytes | None = None,
    ca_file: str | None = None,
) -> dict[str, Any]:
    """Verify `image_ref` (must carry @sha256:) against `public_key_pem`; return what was verified.

    Raises VerificationError (exit 1) for a bad verdict, SluiceError (exit 2) for bad input such
    as a tag-only reference, an unreadable key or an unreachable registry.
    """
    ref = parse_image_ref(image_ref)
    digest = ref.require_digest()
    public_key = keys.load_public_key(public_key_pem)
    rekor_key = keys.load_public_key(rekor_public_key_pem) if rekor_public_key_pem else None
    if rekor_key is not None and not isinstance(rekor_key, ec.EllipticCurvePublicKey):
        raise SluiceError("the Rekor public key must be ECDSA")
    client = RegistryClient(
        ref.registry,
        docker_config=docker_config,
        allow_insecure_loopback=allow_insecure_loopback,
        ca_file=ca_file,
    )
    fingerprint = keys.key_fingerprint(public_key)
    try:
        image = client.get_manifest(ref.repository, digest)
    except RegistryIntegrityError as exc:
        raise VerificationError(str(exc)) from exc
    if image is None:
        raise VerificationError(f"image {ref} not found in the registry")
    manifest_digest(image.body)

    sig_tag = attachment_tag(digest, SIGNATURE_TAG_SUFFIX)
    layers = _layers(client, ref.repository, sig_tag, "signature")
    if layers is None:
        raise VerificationError(f"image {ref} is not signed: no {sig_tag} in {ref.name}")
    verified, skipped = [], []
    for layer in layers:
        try:
            if layer.problems:
                raise LayerRejected(", ".join(layer.problems))
            details = verify_signature_layer(
                media_type=layer.media_type,
                payload=layer.data or b"",
                annotations=layer.annotations,
                public_key=public_key,
                image_digest=digest,
                ed25519_mode=ed25519_mode,
                rekor_key=rekor_key,
            )
        except LayerRejected as exc:
            skipped.append(f"signature layer {layer.index}: {exc}")
            continue
        verified.append({"layer": layer.digest, **details})
    if not verified:
        raise VerificationError(f"no valid signature for {ref} by key {fingerprint}: {_summarise(skipped)}")

    summary: dict[str, Any] = {
        "image": str(ref),
        "digest": digest,
        "key": fingerprint,
        "scheme": keys.scheme_name(public_key, ed25519_mode),
        "signatures": verified,
        "skipped": skipped,
        "attestation": None,
    }
    if attestation_type:
        summary["attestation"] = _verify_attestations(
            client, ref, digest, public_key, fingerprint, attestation_type, ed25519_mode
        )
    return summary


def _verify_attestations(
    client: RegistryClient,
    ref: Any,
    digest: str,
    public_key: keys.PublicKey,
    fingerprint: str,
    predicate_type: str,
    ed25519_mode: keys.Ed25519Mode,
) -> dict[str, Any]:
    att_tag = attachment_tag(digest, ATTESTATION_TAG_SUFFIX)
    layers = _layers(client, ref.repository, att_tag, "attestation")
    if layers is None:
        raise VerificationError(f"image {ref} has no attestations: no {att_tag} in {ref.name}")
    verified, skipped = [], []
    for layer in layers:
        try:
            if layer.problems:
                raise LayerRejected(", ".join(layer.problems))
            details = verify_attestation_layer(
                media_type=layer.media_type,
                envelope=layer.data or b"",
                public_key=public_key,
                image_digest=digest,
                predicate_type=predicate_type,
                ed25519_mode=ed25519_mode,
            )
        except LayerRejected as exc:
            skipped.append(f"attestation layer {layer.index}: {exc}")
            continue
        except EvidenceFailed as exc:
            raise VerificationError(f"attestation layer {layer.index} of {ref}: {exc}") from exc
        verified.append({"layer": layer.digest, **details})
    if not verified:
        raise VerificationError(
            f"no valid {predicate_type} attestation for {ref} by key {fingerprint}: {_summarise(skipped)}"
        )
    return {"predicate_type": predicate_type, "verified": verified, "skipped": skipped}
