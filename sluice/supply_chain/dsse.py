"""DSSE envelopes and in-toto statements, as `cosign attest` writes them (tag-based `.att`).

The signature covers PAE(payloadType, payload), never the envelope JSON, so the payload is taken
from the envelope as bytes and only parsed after its signature has been checked.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sluice.supply_chain.constants import IN_TOTO_PAYLOAD_TYPE, IN_TOTO_STATEMENT_V01, IN_TOTO_STATEMENT_V1
from sluice.supply_chain.gojson import go_dumps, sorted_maps
from sluice.supply_chain.payload import PayloadError, strict_json


class StatementError(ValueError):
    """The envelope or statement does not say what the verifier requires (message says what)."""


@dataclass(frozen=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[bytes, ...]


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding; lengths are byte counts in ASCII decimal."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def build_envelope(
    statement: bytes, sign: Callable[[bytes], bytes], payload_type: str = IN_TOTO_PAYLOAD_TYPE
) -> bytes:
    signature = sign(pae(payload_type, statement))
    doc = {
        "payloadType": payload_type,
        "payload": base64.b64encode(statement).decode(),
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _b64(value: Any, where: str) -> bytes:
    if not isinstance(value, str):
        raise StatementError(f"{where} is not a string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError) as exc:
            raise StatementError(f"{where} is not base64") from exc


def parse_envelope(data: bytes) -> Envelope:
    try:
        doc = strict_json(data)
    except PayloadError as exc:
        raise StatementError(f"DSSE envelope: {exc}") from exc
    if not isinstance(doc, dict):
        raise StatementError("DSSE envelope is not a JSON object")
    payload_type = doc.get("payloadType")
    if not isinstance(payload_type, str):
        raise StatementError("DSSE envelope has no payloadType")
    signatures = doc.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise StatementError("DSSE envelope has no signatures")
    sigs = tuple(_b64(s.get("sig") if isinstance(s, dict) else None, "DSSE signature") for s in signatures)
    return Envelope(payload_type, _b64(doc.get("payload"), "DSSE payload"), sigs)


def build_statement(subject_name: str, sha256_hex: str, predicate_type: str, predicate: Any) -> bytes:
    """An in-toto v0.1 statement, the version `cosign attest` (tag-based) writes and Kyverno reads.

    Marshalled like in-toto-golang's struct (`_type`, `predicateType`, `subject`, `predicate`), the
    predicate being a parsed JSON file, i.e. a Go map with sorted keys.
    """
    doc = {
        "_type": IN_TOTO_STATEMENT_V01,
        "predicateType": predicate_type,
        "subject": [{"name": subject_name, "digest": {"sha256": sha256_hex}}],
        "predicate": sorted_maps(predicate),
    }
    return go_dumps(doc)


def check_statement(
    payload_type: str, statement: bytes, sha256_hex: str, predicate_type: str
) -> dict[str, Any]:
    """The statement, if it is in-toto, names `sha256_hex` among its subjects and has the predicate type.

    Like cosign's IntotoSubjectClaimVerifier: one matching subject is enough; subjects without a
    sha256 digest never match.
    """
    if payload_type != IN_TOTO_PAYLOAD_TYPE:
        raise StatementError(f"payloadType is {payload_type!r}, not {IN_TOTO_PAYLOAD_TYPE!r}")
    try:
        doc = strict_json(statement)
    except PayloadError as exc:
        raise StatementError(f"in-toto statement: {exc}") from exc
    if not isinstance(doc, dict):
        raise StatementError("in-toto statement is not a JSON object")
    if doc.get("_type") not in (IN_TOTO_STATEMENT_V01, IN_TOTO_STATEMENT_V1):
        raise StatementError(f"unknown in-toto statement _type {doc.get('_type')!r}")
    subjects = doc.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise StatementError("in-toto statement has no subject")
    digests = [
        s["digest"].get("sha256")
        for s in subjects
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    ]
    if sha256_hex not in digests:
        named = [d for d in digests if d] or ["none with a sha256 digest"]
        raise StatementError(
            f"no in-toto subject has digest sha256:{sha256_hex} (subjects: {', '.join(named)})"
        )
    if doc.get("predicateType") != predicate_type:
        raise StatementError(f"predicateType is {doc.get('predicateType')!r}, not {predicate_type!r}")
    return doc
