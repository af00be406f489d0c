"""Keyless (Fulcio certificate + Rekor) verification of cosign's tag-based `.sig`/`.att` layers, offline.

Mirrors cosign v2 `verifyInternal` for a layer that carries `dev.sigstore.cosign/certificate` and
`dev.sigstore.cosign/bundle` (pkg/cosign/verify.go at v2.6.4):
  1. the Rekor SET verifies with a trusted-root Rekor key (tlog.verify_bundle) -> trusted time T;
  2. the log entry is about this layer: same payload hash, signature and certificate;
  3. the certificate chains to a Fulcio CA of the trusted root, valid at T, whose validFor
     contains T (sigstore-go FulcioCertificateAuthority.Verify); code-signing EKU;
  4. SAN and OIDC issuer match the policy (cosign CheckCertificatePolicy);
  5. an embedded SCT verifies with a trusted-root CT log key (unless explicitly ignored);
  6. the signature verifies with the certificate's key;
  7. T lies inside [NotBefore, NotAfter] (cosign CheckExpiry). Short-lived certificates are long
     expired when anyone verifies; that is expected: T, not now, is what counts.
The `dev.sigstore.cosign/chain` annotation is never trusted: intermediates come from the trusted
root only (what cosign does whenever it has a trusted root). sluice.supply_chain.trust.KeylessTrust
runs step 6 and ties this to the layer verdicts.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, ObjectIdentifier
from cryptography.x509.verification import (
    Criticality,
    ExtensionPolicy,
    PolicyBuilder,
    Store,
    VerificationError,
)

from sluice.errors import SluiceError
from sluice.supply_chain import tlog
from sluice.supply_chain.constants import BUNDLE_ANNOTATION, CERTIFICATE_ANNOTATION
from sluice.supply_chain.sct import verify_embedded_sct
from sluice.supply_chain.trust_root import CertificateAuthority, TrustedRoot
from sluice.supply_chain.verdicts import LayerRejected

OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")  # raw string (deprecated, still written)
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")  # DER UTF8String
OID_OTHERNAME_SAN = ObjectIdentifier("1.3.6.1.4.1.57264.1.7")
MAX_CERTIFICATE_PEM = 64 * 1024
# Go's regexp (RE2) has no lookaround and no backreferences; refuse them rather than accept a
# pattern that cosign and Kyverno would reject.
_NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!)|\\[1-9]")


@dataclass(frozen=True)
class IdentityPolicy:
    """cosign's --certificate-identity[-regexp] and --certificate-oidc-issuer[-regexp].

    Regexps are searched, not anchored, like Go's regexp.MatchString in cosign: write ^...$ to
    anchor. Exactly one form per field: cosign silently prefers the regexp when both are given,
    which hides mistakes, so both is refused here.
    """

    subject: str | None = None
    subject_regexp: str | None = None
    issuer: str | None = None
    issuer_regexp: str | None = None

    def __post_init__(self) -> None:
        if bool(self.subject) == bool(self.subject_regexp):
            raise SluiceError("give exactly one of --certificate-identity or --certificate-identity-regexp")
        if bool(self.issuer) == bool(self.issuer_regexp):
            raise SluiceError(
                "give exactly one of --certificate-oidc-issuer or --certificate-oidc-issuer-regexp"
            )
        for flag, pattern in (("identity", self.subject_regexp), ("oidc-issuer", self.issuer_regexp)):
            if pattern:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    raise SluiceError(
                        f"--certificate-{flag}-regexp {pattern!r} is not a regexp: {exc}"
                    ) from exc
                if _NOT_RE2.search(pattern):
                    raise SluiceError(
                        f"--certificate-{flag}-regexp {pattern!r} uses lookaround or a backreference, "
                        "which Go regexps (cosign, Kyverno) do not have"
                    )

    def describe(self) -> str:
        who = self.subject or f"matching {self.subject_regexp!r}"
        issuer = self.issuer or f"matching {self.issuer_regexp!r}"
        return f"identity {who} (issuer {issuer})"

    def check(self, sans: list[str], issuer: str) -> None:
        if self.issuer_regexp:
            issuer_ok = re.search(self.issuer_regexp, issuer) is not None
        else:
            issuer_ok = issuer == self.issuer
        if not issuer_ok:
            raise LayerRejected(
                f"certificate OIDC issuer {issuer!r} does not match {self.issuer or self.issuer_regexp!r}"
            )
        if self.subject_regexp:
            subject_ok = any(re.search(self.subject_regexp, san) for san in sans)
        else:
            subject_ok = self.subject in sans
        if not subject_ok:
            raise LayerRejected(
                f"certificate identity {sans} does not match {self.subject or self.subject_regexp!r}"
            )


# --- certificate contents -----------------------------------------------------------------------


def _der_utf8(value: bytes) -> str:
    """Decode a DER UTF8String (tag 0x0C), the encoding of Fulcio's 1.8+ extensions."""
    if len(value) < 2 or value[0] != 0x0C:
        raise LayerRejected("Fulcio extension is not a DER UTF8String")
    length, offset = value[1], 2
    if length & 0x80:
        count = length & 0x7F
        if count not in (1, 2) or len(value) < 2 + count:
            raise LayerRejected("Fulcio extension has a bad DER length")
        length, offset = int.from_bytes(value[2 : 2 + count], "big"), 2 + count
    if offset + length != len(value):
        raise LayerRejected("Fulcio extension has trailing or missing bytes")
    try:
        return value[offset:].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LayerRejected("Fulcio extension is not UTF-8") from exc


def _extension_bytes(cert: x509.Certificate, oid: ObjectIdentifier) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None
    return getattr(value, "value", None)


def oidc_issuer(cert: x509.Certificate) -> str:
    """The OIDC issuer Fulcio recorded.

    Fulcio writes both 1.1 (raw bytes, what cosign and Kyverno read) and 1.8 (DER UTF8String,
    what sigstore-go's fulcio ParseExtensions ends up with). Both present and different means a
    certificate no Fulcio issued: refused rather than choosing one.
    """
    legacy, v2 = _extension_bytes(cert, OID_ISSUER_V1), _extension_bytes(cert, OID_ISSUER_V2)
    decoded_v2 = _der_utf8(v2) if v2 is not None else None
    try:
        decoded_v1 = legacy.decode("utf-8") if legacy is not None else None
    except UnicodeDecodeError as exc:
        raise LayerRejected("Fulcio issuer extension 1.1 is not UTF-8") from exc
    if decoded_v1 is not None and decoded_v2 is not None and decoded_v1 != decoded_v2:
        raise LayerRejected(f"certificate names two OIDC issuers: {decoded_v1!r} and {decoded_v2!r}")
    issuer = decoded_v2 if decoded_v2 is not None else decoded_v1
    if not issuer:
        raise LayerRejected("certificate has no Fulcio OIDC issuer extension (1.3.6.1.4.1.57264.1.8/.1.1)")
    return issuer


def subject_alternative_names(cert: x509.Certificate) -> list[str]:
    """SANs as cosign lists them (cryptoutils.GetSubjectAlternateNames): DNS, email, IP, URI, otherName."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound as exc:
        raise LayerRejected("certificate has no subjectAltName: not a Fulcio certificate") from exc
    names = [*san.get_values_for_type(x509.DNSName), *san.get_values_for_type(x509.RFC822Name)]
    names += [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    names += san.get_values_for_type(x509.UniformResourceIdentifier)
    names += [
        _der_utf8(o.value) for o in san.get_values_for_type(x509.OtherName) if o.type_id == OID_OTHERNAME_SAN
    ]
    return names


def load_certificate(annotations: dict[str, str]) -> x509.Certificate:
    pem = annotations.get(CERTIFICATE_ANNOTATION, "")
    if not pem:
        raise LayerRejected(f"no {CERTIFICATE_ANNOTATION} annotation: not a keyless signature")
    if len(pem) > MAX_CERTIFICATE_PEM:
        raise LayerRejected(f"{CERTIFICATE_ANNOTATION} is larger than {MAX_CERTIFICATE_PEM} bytes")
    try:
        certs = x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        raise LayerRejected(f"{CERTIFICATE_ANNOTATION} is not a PEM certificate") from exc
    if len(certs) != 1:
        raise LayerRejected(f"{CERTIFICATE_ANNOTATION} holds {len(certs)} certificates, not one")
    try:
        len(certs[0].extensions)  # parsed lazily: a malformed or duplicated extension raises here
    except ValueError as exc:
        raise LayerRejected(f"{CERTIFICATE_ANNOTATION} has malformed extensions: {exc}") from exc
    return certs[0]


# --- chain -------------------------------------------------------------------------------------

# Fulcio certificates carry the code-signing EKU, which the WebPKI client profile would refuse;
# like sigstore-python, allow any EKU in the chain check and require code signing separately.
_CA_POLICY = ExtensionPolicy.webpki_defaults_ca().may_be_present(
    x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)
_EE_POLICY = ExtensionPolicy.webpki_defaults_ee().may_be_present(
    x509.ExtendedKeyUsage, Criticality.NON_CRITICAL, None
)


def _chain_via(ca: CertificateAuthority, cert: x509.Certificate, at: datetime) -> list[x509.Certificate]:
    verifier = (
        PolicyBuilder()
        .store(Store([ca.root]))
        .time(at)
        .extension_policies(ca_policy=_CA_POLICY, ee_policy=_EE_POLICY)
        .build_client_verifier()
    )
    return list(verifier.verify(cert, list(ca.intermediates)).chain)


def verify_chain(cert: x509.Certificate, root: TrustedRoot, at: datetime) -> list[x509.Certificate]:
    """The chain [leaf, issuer, ..., root] through a trusted Fulcio CA valid at `at`."""
    reasons = []
    for ca in root.certificate_authorities:
        if not ca.valid_for.contains(at):
            reasons.append(
                f"{ca.uri or ca.root.subject.rfc4514_string()}: not valid at {at:%Y-%m-%dT%H:%M:%SZ}"
            )
            continue
        try:
            chain = _chain_via(ca, cert, at)
        except (VerificationError, ValueError) as exc:
            reasons.append(f"{ca.uri or ca.root.subject.rfc4514_string()}: {exc}")
            continue
        try:
            eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
        except x509.ExtensionNotFound:
            eku = []
        if ExtendedKeyUsageOID.CODE_SIGNING not in eku:
            raise LayerRejected("signing certificate lacks the code-signing extended key usage")
        return chain
    raise LayerRejected("certificate does not chain to a trusted Fulcio CA (" + "; ".join(reasons) + ")")


# --- signatures ----------------------------------------------------------------------------------


def verify_with_certificate(cert: x509.Certificate, signature: bytes, data: bytes) -> bool:
    """cosign signature.LoadVerifier(cert.PublicKey, SHA256): ECDSA/RSA over SHA-256, Ed25519 pure."""
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, data, padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, data)
        else:
            return False
    except InvalidSignature:
        return False
    return True


def verify_certificate_and_entry(
    *,
    artifact: bytes,
    signature: bytes | None,
    annotations: dict[str, str],
    root: TrustedRoot,
    policy: IdentityPolicy,
    require_sct: bool = True,
) -> tuple[x509.Certificate, dict[str, Any]]:
    """Steps 1-5 and 7 for one layer; the caller verifies the signature itself (step 6)."""
    cert = load_certificate(annotations)
    bundle = annotations.get(BUNDLE_ANNOTATION)
    if not bundle:
        raise LayerRejected(
            f"no {BUNDLE_ANNOTATION} annotation: offline keyless verification needs the Rekor SET"
        )
    entry = tlog.verify_bundle(bundle, root)
    tlog.check_entry_binds(entry, artifact=artifact, signature=signature, signer=cert)
    when = entry.integrated_time
    if not (cert.not_valid_before_utc <= when <= cert.not_valid_after_utc):
        raise LayerRejected(
            f"signature was logged at {when:%Y-%m-%dT%H:%M:%SZ}, outside the certificate's validity "
            f"{cert.not_valid_before_utc:%Y-%m-%dT%H:%M:%SZ}..{cert.not_valid_after_utc:%Y-%m-%dT%H:%M:%SZ}"
        )
    chain = verify_chain(cert, root, when)
    sans, issuer = subject_alternative_names(cert), oidc_issuer(cert)
    policy.check(sans, issuer)
    ct_log = verify_embedded_sct(cert, chain[1], root) if require_sct else None
    details = {
        "identity": sans,
        "issuer": issuer,
        "integrated_time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "rekor_log_index": entry.log_index,
        "rekor_log": entry.log_url,
        "ct_log": ct_log,
        "certificate_sha256": hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest(),
    }
    return cert, details
