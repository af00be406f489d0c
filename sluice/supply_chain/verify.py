"""Verify the cosign tag-based signatures and gate-evidence attestations of an image, by digest.

Per layer, the verdicts are sluice.supply_chain.layers' (cosign's and Kyverno's rules); who may
have signed is a sluice.supply_chain.trust.Trust (a public key, or a keyless identity); how much a
hostile registry can make us read is sluice.supply_chain.bounded's. Here: the order of things.
- Signatures: layers are read one at a time and reading stops at the first that counts (one
  signature is what Kyverno's `count: 1` and cosign ask for). Other layers are skipped, with reasons.
- Attestations of the Sluice predicate: every one must be read and say `passed: true`, so a later
  failing gate blocks the image; if the read budget runs out before all are read, that is a refusal.
  For other predicate types the first that counts is enough. Layers whose `predicateType` annotation
  names another type are not fetched (the annotation is unsigned: it can only make us skip).
"""

from __future__ import annotations

import json
from typing import Any

from sluice.supply_chain.bounded import Bounds, BudgetSpent, Layer, Reader, attachment_layers, summarise
from sluice.supply_chain.constants import (
    ATTESTATION_TAG_SUFFIX,
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_TAG_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.layers import verify_attestation_layer, verify_signature_layer
from sluice.supply_chain.oci import RegistryClient, sha256_digest
from sluice.supply_chain.refs import ImageRef, attachment_tag, parse_image_ref
from sluice.supply_chain.transport import RegistryIntegrityError
from sluice.supply_chain.trust import Trust
from sluice.supply_chain.verdicts import EvidenceFailed, LayerRejected, VerificationError


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


def _check_image(client: RegistryClient, ref: ImageRef, digest: str) -> None:
    try:
        image = client.get_manifest(ref.repository, digest)
    except RegistryIntegrityError as exc:
        raise VerificationError(str(exc)) from exc
    if image is None:
        raise VerificationError(f"image {ref} not found in the registry")
    manifest_digest(image.body)


def _skipped(what: str, skipped: list[tuple[int, str]]) -> list[str]:
    return [f"{what} layer {index}: {reason}" for index, reason in skipped]


def _verify_signatures(
    client: RegistryClient, ref: ImageRef, digest: str, trust: Trust, bounds: Bounds
) -> tuple[dict[str, Any], list[str]]:
    """The first signature layer that counts, and the reasons the ones before it did not."""
    tag = attachment_tag(digest, SIGNATURE_TAG_SUFFIX)
    layers = attachment_layers(client, ref.repository, tag, "signature", bounds)
    if layers is None:
        raise VerificationError(f"image {ref} is not signed: no {tag} in {ref.name}")
    reader, skipped = Reader(client, ref.repository, bounds), []
    for layer in layers:
        try:
            if layer.media_type != SIMPLE_SIGNING_MEDIA_TYPE:
                raise LayerRejected(f"not a signature attachment (mediaType {layer.media_type or 'missing'})")
            details = verify_signature_layer(
                media_type=layer.media_type,
                payload=reader.fetch(layer),
                annotations=layer.annotations,
                trust=trust,
                image_digest=digest,
            )
        except LayerRejected as exc:
            skipped.append((layer.index, str(exc)))
            continue
        return {"layer": layer.digest, **details}, _skipped("signature", skipped)
    raise VerificationError(
        f"no valid signature for {ref} by {trust.describe()}: {summarise('signature', skipped)}"
    )


def verify_image(
    image_ref: str,
    trust: Trust,
    *,
    attestation_type: str | None = None,
    docker_config: str | None = None,
    allow_insecure_loopback: bool = False,
    ca_file: str | None = None,
    bounds: Bounds | None = None,
) -> dict[str, Any]:
    """Verify `image_ref` (must carry @sha256:) against `trust`; return what was verified.

    Raises VerificationError (a Refused: exit 1) for a bad verdict, SluiceError (exit 2) for bad
    input such as a tag-only reference or an unreachable registry.
    """
    ref = parse_image_ref(image_ref)
    digest = ref.require_digest()
    bounds = bounds or Bounds()
    client = RegistryClient(
        ref.registry,
        docker_config=docker_config,
        allow_insecure_loopback=allow_insecure_loopback,
        ca_file=ca_file,
    )
    _check_image(client, ref, digest)
    signature, skipped = _verify_signatures(client, ref, digest, trust, bounds)
    summary: dict[str, Any] = {
        "image": str(ref),
        "digest": digest,
        "signer": trust.describe(),
        "signatures": [signature],
        "skipped": skipped,
        "attestation": None,
    }
    if attestation_type:
        summary["attestation"] = _verify_attestations(client, ref, digest, trust, attestation_type, bounds)
    return summary


def _attestation(
    layer: Layer, reader: Reader, trust: Trust, digest: str, predicate_type: str
) -> dict[str, Any]:
    if layer.media_type != DSSE_MEDIA_TYPE:
        raise LayerRejected(f"not an attestation (mediaType {layer.media_type or 'missing'})")
    declared = layer.annotations.get(PREDICATE_TYPE_ANNOTATION)
    if declared and declared != predicate_type:
        raise LayerRejected(f"predicateType annotation {declared!r}, not {predicate_type!r} (not fetched)")
    return verify_attestation_layer(
        media_type=layer.media_type,
        envelope=reader.fetch(layer),
        annotations=layer.annotations,
        trust=trust,
        image_digest=digest,
        predicate_type=predicate_type,
    )


def _verify_attestations(
    client: RegistryClient, ref: ImageRef, digest: str, trust: Trust, predicate_type: str, bounds: Bounds
) -> dict[str, Any]:
    tag = attachment_tag(digest, ATTESTATION_TAG_SUFFIX)
    layers = attachment_layers(client, ref.repository, tag, "attestation", bounds)
    if layers is None:
        raise VerificationError(f"image {ref} has no attestations: no {tag} in {ref.name}")
    every = predicate_type == PREDICATE_TYPE  # each genuine gate-evidence attestation must pass
    reader, verified, skipped, unread = Reader(client, ref.repository, bounds), [], [], 0
    for layer in layers:
        try:
            verified.append(
                {"layer": layer.digest, **_attestation(layer, reader, trust, digest, predicate_type)}
            )
        except BudgetSpent as exc:
            unread += 1
            skipped.append((layer.index, str(exc)))
        except LayerRejected as exc:
            skipped.append((layer.index, str(exc)))
        except EvidenceFailed as exc:
            raise VerificationError(f"attestation layer {layer.index} of {ref}: {exc}") from exc
        if verified and not every:
            break
    reasons = summarise("attestation", skipped)
    if not verified:
        raise VerificationError(
            f"no valid {predicate_type} attestation for {ref} by {trust.describe()}: {reasons}"
        )
    if every and unread:
        raise VerificationError(
            f"{unread} attestation layer(s) of {ref} were not read, "
            f"so a failing gate cannot be ruled out: {reasons}"
        )
    return {
        "predicate_type": predicate_type,
        "verified": verified,
        "skipped": _skipped("attestation", skipped),
    }
