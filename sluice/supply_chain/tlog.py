"""Offline check of a Rekor bundle (the `dev.sigstore.cosign/bundle` layer annotation).

The bundle is `{"SignedEntryTimestamp": b64, "Payload": {"body", "integratedTime", "logIndex",
"logID"}}` (cosign pkg/cosign/bundle/tlog.go). The SET is Rekor's ECDSA signature over the RFC 8785
canonical JSON of exactly those four Payload fields (cosign VerifySET, sigstore-go pkg/tlog/entry.go
VerifySET); the key is the trusted root's Rekor log whose logId equals logID, and that key's validFor
window must contain integratedTime. A verified SET makes integratedTime a trusted time, which is
what a short-lived Fulcio certificate is checked against.

The entry must then be about *this* layer (cosign VerifyBundle: bundleHash, compareSigs,
comparePublicKey): hashedrekord for `.sig` layers, intoto or dsse for `.att` layers, logged with the
signer's certificate (keyless) or public key (`--key` with `--rekor-key`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sluice.supply_chain.keys import PublicKey
from sluice.supply_chain.trust_root import TrustedRoot
from sluice.supply_chain.verdicts import LayerRejected

MAX_BUNDLE_BYTES = 256 * 1024
_DER = serialization.Encoding.DER
_SPKI = serialization.PublicFormat.SubjectPublicKeyInfo

Signer = x509.Certificate | PublicKey


@dataclass(frozen=True)
class LogEntry:
    kind: str
    api_version: str
    spec: dict[str, Any]
    integrated_time: datetime
    log_index: int
    log_url: str


def _b64(value: Any, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise LayerRejected(f"Rekor bundle: {what} is not base64") from exc


def _int(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise LayerRejected(f"Rekor bundle: {what} is not a non-negative integer")
    return value


def canonical_payload(body_b64: str, integrated_time: int, log_index: int, log_id_hex: str) -> bytes:
    """RFC 8785 JSON of the SET payload: ASCII strings and integers, so sorted keys and no spaces."""
    doc = {"body": body_b64, "integratedTime": integrated_time, "logID": log_id_hex, "logIndex": log_index}
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def _parse(bundle_json: str) -> tuple[str, str, int, int, bytes]:
    if len(bundle_json) > MAX_BUNDLE_BYTES:
        raise LayerRejected(f"Rekor bundle is larger than {MAX_BUNDLE_BYTES} bytes")
    try:
        bundle = json.loads(bundle_json)
        payload = bundle["Payload"]
        body_b64, log_id_hex = payload["body"], payload["logID"]
        set_sig = _b64(bundle["SignedEntryTimestamp"], "SignedEntryTimestamp")
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise LayerRejected(f"Rekor bundle is malformed: {exc}") from exc
    if not isinstance(body_b64, str) or not isinstance(log_id_hex, str):
        raise LayerRejected("Rekor bundle: body and logID must be strings")
    integrated = _int(payload.get("integratedTime"), "integratedTime")
    index = _int(payload.get("logIndex"), "logIndex")
    return body_b64, log_id_hex, integrated, index, set_sig


def verify_bundle(bundle_json: str, root: TrustedRoot) -> LogEntry:
    """Verify the SET with the root's Rekor key; return the (now trusted) log entry."""
    body_b64, log_id_hex, integrated, index, set_sig = _parse(bundle_json)
    try:
        log = root.rekor_key(bytes.fromhex(log_id_hex))
    except ValueError as exc:
        raise LayerRejected(f"Rekor bundle: logID {log_id_hex[:80]!r} is not hex") from exc
    if log is None:
        raise LayerRejected(
            f"Rekor bundle names log {log_id_hex[:64]}, which {root.description} does not hold"
        )
    when = datetime.fromtimestamp(integrated, UTC)
    if not log.valid_for.contains(when):
        raise LayerRejected(f"Rekor key {log.url} was not valid at integratedTime {when:%Y-%m-%dT%H:%M:%SZ}")
    try:
        log.key.verify(
            set_sig, canonical_payload(body_b64, integrated, index, log_id_hex), ec.ECDSA(hashes.SHA256())
        )
    except InvalidSignature as exc:
        raise LayerRejected(f"Rekor SignedEntryTimestamp does not verify with the key of {log.url}") from exc
    try:
        body = json.loads(_b64(body_b64, "body"))
        kind, version, spec = body["kind"], body["apiVersion"], body["spec"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise LayerRejected(f"Rekor entry body is malformed: {exc}") from exc
    if not isinstance(spec, dict):
        raise LayerRejected("Rekor entry spec is not an object")
    return LogEntry(str(kind), str(version), spec, when, index, log.url)


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(_DER, _SPKI)


def _logged_by(b64_pem: Any, what: str, signer: Signer) -> bool:
    """Whether the key material Rekor logged (PEM, base64) is the signer's (cosign comparePublicKey)."""
    pem = _b64(b64_pem, what)
    try:
        if b"CERTIFICATE" in pem.split(b"\n", 1)[0]:
            logged = x509.load_pem_x509_certificate(pem)
            if isinstance(signer, x509.Certificate):
                return logged.public_bytes(_DER) == signer.public_bytes(_DER)
            return _spki(logged.public_key()) == _spki(signer)
        if isinstance(signer, x509.Certificate):
            return False
        return _spki(serialization.load_pem_public_key(pem)) == _spki(signer)
    except ValueError as exc:
        raise LayerRejected(f"Rekor entry: {what} is not a PEM certificate or public key") from exc


def _hash(doc: Any, artifact: bytes, what: str) -> None:
    if not isinstance(doc, dict) or doc.get("algorithm") != "sha256":
        raise LayerRejected(f"Rekor entry: {what} is not a sha256 hash")
    if doc.get("value") != hashlib.sha256(artifact).hexdigest():
        raise LayerRejected(f"Rekor entry is for other content than this layer ({what} differs)")


def check_entry_binds(entry: LogEntry, *, artifact: bytes, signature: bytes | None, signer: Signer) -> None:
    """The log entry covers this layer's bytes, its signature (when separate) and its signer."""
    spec = entry.spec
    logged_sig: Any = None
    try:
        if (entry.kind, entry.api_version) == ("hashedrekord", "0.0.1"):
            _hash(spec["data"]["hash"], artifact, "data.hash")
            logged_sig, key = spec["signature"]["content"], spec["signature"]["publicKey"]["content"]
        elif (entry.kind, entry.api_version) == ("intoto", "0.0.1"):
            _hash(spec["content"]["hash"], artifact, "content.hash")
            key = spec["publicKey"]
        elif (entry.kind, entry.api_version) == ("dsse", "0.0.1"):
            _hash(spec["envelopeHash"], artifact, "envelopeHash")
            if len(spec["signatures"]) != 1:
                raise LayerRejected("Rekor dsse entry must hold exactly one signature")
            logged_sig, key = spec["signatures"][0]["signature"], spec["signatures"][0]["verifier"]
        else:
            raise LayerRejected(f"Rekor entry kind {entry.kind} {entry.api_version} is not supported")
    except (KeyError, TypeError, IndexError) as exc:
        raise LayerRejected(f"Rekor {entry.kind} entry is malformed: missing {exc}") from exc
    if signature is not None and logged_sig is not None and _b64(logged_sig, "signature") != signature:
        raise LayerRejected("Rekor entry holds another signature than this layer")
    if not _logged_by(key, "the logged key", signer):
        raise LayerRejected("Rekor entry was logged for another certificate or key")
