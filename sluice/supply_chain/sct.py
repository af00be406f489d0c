"""Embedded Signed Certificate Timestamp check (RFC 6962 section 3.2), as cosign does by default.

cosign's ValidateAndUnpackCert refuses a Fulcio certificate without an embedded SCT unless
`--insecure-ignore-sct`, and verifies it against the CT log keys of the trusted root (`ctlogs`);
sigstore-go requires one verified SCT (VerifySignedCertificateTimestamp, threshold 1). The SCT
proves the certificate was published to the CT log, so a mis-issued certificate is detectable.

The signed data is the RFC 6962 `digitally-signed` struct for a precertificate entry: version,
signature_type 0, timestamp (ms), entry_type 1, sha256(issuer SPKI DER), the TBSCertificate without
the SCT extension (cryptography's `tbs_precertificate_bytes`), and the SCT's extensions.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.certificate_transparency import LogEntryType, SignedCertificateTimestamp

from sluice.supply_chain.trust_root import TrustedRoot
from sluice.supply_chain.verdicts import LayerRejected

MAX_SCTS = 16


def _u24(length: int) -> bytes:
    if length >= 1 << 24:
        raise LayerRejected("TBSCertificate too large for an SCT")
    return struct.pack("!I", length)[1:]


def signed_data(sct: SignedCertificateTimestamp, cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """The bytes the CT log signed for `cert` (precertificate entry)."""
    issuer_key_hash = hashlib.sha256(
        issuer.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    ).digest()
    tbs = cert.tbs_precertificate_bytes
    millis = int(sct.timestamp.replace(tzinfo=UTC).timestamp() * 1000)
    extensions = sct.extension_bytes
    return (
        struct.pack("!BBQH", sct.version.value, 0, millis, LogEntryType.PRE_CERTIFICATE.value)
        + issuer_key_hash
        + _u24(len(tbs))
        + tbs
        + struct.pack("!H", len(extensions))
        + extensions
    )


def verify_embedded_sct(cert: x509.Certificate, issuer: x509.Certificate, root: TrustedRoot) -> str:
    """Return the URL of the CT log whose SCT verifies; raise LayerRejected otherwise."""
    try:
        scts = list(
            cert.extensions.get_extension_for_class(x509.PrecertificateSignedCertificateTimestamps).value
        )
    except x509.ExtensionNotFound as exc:
        raise LayerRejected(
            "certificate has no embedded SCT (pass --insecure-ignore-sct only for a private CA without CT)"
        ) from exc
    problems = []
    for sct in scts[:MAX_SCTS]:
        log = root.ct_key(sct.log_id)
        if log is None:
            problems.append(f"SCT from unknown log {sct.log_id.hex()[:16]}")
            continue
        when = sct.timestamp.replace(tzinfo=UTC)
        if sct.entry_type != LogEntryType.PRE_CERTIFICATE or not log.valid_for.contains(when):
            problems.append(f"SCT from {log.url} is not a precertificate SCT inside the key's validity")
            continue
        if not isinstance(sct.signature_hash_algorithm, hashes.SHA256):
            problems.append(f"SCT from {log.url} does not use SHA-256")
            continue
        try:
            log.key.verify(sct.signature, signed_data(sct, cert, issuer), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            problems.append(f"SCT from {log.url} does not verify")
            continue
        return log.url
    raise LayerRejected("no valid embedded SCT: " + ("; ".join(problems) or "empty SCT list"))
