"""The verdict on one `.sig` or `.att` layer, whoever the trusted signer is (key or keyless).

The rules mirror cosign and Kyverno so that `sluice promote` refuses what admission would refuse:
- a signature counts only if it verifies (sluice.supply_chain.trust) over the exact payload bytes,
  the payload is a cosign container image signature, and it names the image digest;
- an attestation counts only if its DSSE signature verifies, its statement is in-toto, names the
  image digest as a subject and has the predicate type asked for. For the Sluice predicate, a
  counted attestation must also say `passed: true` (EvidenceFailed otherwise: Kyverno evaluates its
  condition on each attestation, so a later failing gate blocks the image).
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from sluice.supply_chain import dsse
from sluice.supply_chain.constants import (
    DSSE_MEDIA_TYPE,
    PREDICATE_TYPE,
    SIGNATURE_ANNOTATION,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.payload import PayloadError, parse_payload
from sluice.supply_chain.trust import Trust
from sluice.supply_chain.verdicts import EvidenceFailed, LayerRejected


def decode_signature(annotations: dict[str, str]) -> bytes:
    value = annotations.get(SIGNATURE_ANNOTATION)
    if not value or not isinstance(value, str):
        raise LayerRejected(f"no {SIGNATURE_ANNOTATION} annotation")
    try:  # Go's base64 decoder skips CR/LF, and cosign writes wrapped signatures for big keys
        return base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LayerRejected("signature annotation is not base64") from exc


def verify_signature_layer(
    *, media_type: str, payload: bytes, annotations: dict[str, str], trust: Trust, image_digest: str
) -> dict[str, Any]:
    """Verdict on one `.sig` layer; raises LayerRejected naming the first thing that is wrong."""
    if media_type != SIMPLE_SIGNING_MEDIA_TYPE:
        raise LayerRejected(f"not a signature attachment (mediaType {media_type or 'missing'})")
    details = trust.verify_signature(payload, decode_signature(annotations), annotations)
    try:
        parsed = parse_payload(payload)
    except PayloadError as exc:
        raise LayerRejected(f"signed payload is not a cosign image signature: {exc}") from exc
    if parsed.manifest_digest != image_digest:
        raise LayerRejected(
            f"signature is for manifest {parsed.manifest_digest}, not {image_digest} "
            "(manifest modified or signature copied)"
        )
    return {"docker_reference": parsed.docker_reference, "optional": parsed.optional, **details}


def _gate_evidence(predicate: Any) -> dict[str, Any]:
    if not isinstance(predicate, dict):
        raise EvidenceFailed("gate evidence predicate is not a JSON object")
    if predicate.get("passed") is not True:
        raise EvidenceFailed(
            f"gate evidence says passed={json.dumps(predicate.get('passed'))}"
            + (f" ({predicate['summary']})" if isinstance(predicate.get("summary"), str) else "")
        )
    return {
        "passed": True,
        "evidence_kind": predicate.get("kind"),
        "schema_version": predicate.get("schema_version"),
        "subject": predicate.get("subject"),
    }


def verify_attestation_layer(
    *,
    media_type: str,
    envelope: bytes,
    annotations: dict[str, str],
    trust: Trust,
    image_digest: str,
    predicate_type: str,
) -> dict[str, Any]:
    """Verdict on one `.att` layer. LayerRejected: does not count. EvidenceFailed: counts and fails."""
    if media_type != DSSE_MEDIA_TYPE:
        raise LayerRejected(f"not an attestation (mediaType {media_type or 'missing'})")
    try:
        env = dsse.parse_envelope(envelope)
    except dsse.StatementError as exc:
        raise LayerRejected(str(exc)) from exc
    details = trust.verify_envelope(envelope, env, annotations)
    try:
        statement = dsse.check_statement(
            env.payload_type, env.payload, image_digest.split(":", 1)[1], predicate_type
        )
    except dsse.StatementError as exc:
        raise LayerRejected(str(exc)) from exc
    result: dict[str, Any] = {"predicate_type": predicate_type, **details}
    if predicate_type == PREDICATE_TYPE:
        result.update(_gate_evidence(statement.get("predicate")))
    return result
