"""A throw-away Sigstore for tests: Fulcio-like CA chain, CT log, Rekor log, all made at test time.

Nothing here is committed key material: every key is generated per run. Certificates follow the
Fulcio profile (root and intermediate CAs on P-384, short-lived P-256 leaf with an empty subject, a
critical SAN, code-signing EKU, the issuer in extensions 1.3.6.1.4.1.57264.1.1 and .1.8, and an
embedded SCT) so that the verifier is exercised the way real Fulcio output exercises it. The SET
and SCT encodings are written here independently of sluice.supply_chain (RFC 6962, cosign's SET
payload), so a shared misunderstanding cannot make both sides agree.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

OID_SCT_LIST = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
OID_ISSUER_V1 = ObjectIdentifier("1.3.6.1.4.1.57264.1.1")
OID_ISSUER_V2 = ObjectIdentifier("1.3.6.1.4.1.57264.1.8")
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def spki(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def _der(tag: int, data: bytes) -> bytes:
    """DER TLV with the minimal length encoding (contents below 64 KiB)."""
    if len(data) < 0x80:
        return bytes([tag, len(data)]) + data
    if len(data) < 0x100:
        return bytes([tag, 0x81, len(data)]) + data
    return bytes([tag, 0x82]) + struct.pack("!H", len(data)) + data


def der_utf8(text: str) -> bytes:
    return _der(0x0C, text.encode())


def _octet_string(data: bytes) -> bytes:
    return _der(0x04, data)


def _ca(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    not_before: datetime,
    path_length: int | None,
) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "sluice.test"),
            x509.NameAttribute(NameOID.COMMON_NAME, subject),
        ]
    )
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer.subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=path_length), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False
        )
    return builder.sign(issuer_key, hashes.SHA384())


@dataclass
class LocalSigstore:
    """Root CA -> intermediate -> leaves, plus a CT log and a Rekor log, all valid from `since`."""

    since: datetime = EPOCH
    root_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    intermediate_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP384R1())
    )
    ct_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    rekor_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )

    def __post_init__(self) -> None:
        self.root = _ca("sluice-test-root", self.root_key, None, self.root_key, self.since, 1)
        self.intermediate = _ca(
            "sluice-test-intermediate", self.intermediate_key, self.root, self.root_key, self.since, 0
        )

    # -- trusted root -----------------------------------------------------------------------------

    def trusted_root(self, *, ca_end: datetime | None = None) -> bytes:
        def b64(data: bytes) -> str:
            return base64.b64encode(data).decode()

        def window(end: datetime | None = None) -> dict[str, str]:
            out = {"start": self.since.strftime("%Y-%m-%dT%H:%M:%SZ")}
            if end:
                out["end"] = end.strftime("%Y-%m-%dT%H:%M:%SZ")
            return out

        def log(url: str, key: ec.EllipticCurvePrivateKey) -> dict:
            der = spki(key.public_key())
            return {
                "baseUrl": url,
                "hashAlgorithm": "SHA2_256",
                "publicKey": {
                    "rawBytes": b64(der),
                    "keyDetails": "PKIX_ECDSA_P256_SHA_256",
                    "validFor": window(),
                },
                "logId": {"keyId": b64(hashlib.sha256(der).digest())},
            }

        chain = [{"rawBytes": b64(c.public_bytes(Encoding.DER))} for c in (self.intermediate, self.root)]
        doc = {
            "mediaType": "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
            "tlogs": [log("https://rekor.test", self.rekor_key)],
            "certificateAuthorities": [
                {
                    "subject": {"organization": "sluice.test", "commonName": "sluice-test-root"},
                    "uri": "https://fulcio.test",
                    "certChain": {"certificates": chain},
                    "validFor": window(ca_end),
                }
            ],
            "ctlogs": [log("https://ctfe.test", self.ct_key)],
            "timestampAuthorities": [],
        }
        return json.dumps(doc, indent=2).encode()

    # -- leaf certificate with an embedded SCT ----------------------------------------------------------

    def _leaf_builder(
        self,
        key: ec.EllipticCurvePrivateKey,
        sans: list[x509.GeneralName],
        issuers: tuple[str | None, str | None],
        not_before: datetime,
        lifetime: timedelta,
        serial: int,
    ) -> x509.CertificateBuilder:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([]))
            .issuer_name(self.intermediate.subject)
            .public_key(key.public_key())
            .serial_number(serial)
            .not_valid_before(not_before)
            .not_valid_after(not_before + lifetime)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CODE_SIGNING]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.intermediate_key.public_key()),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=True)
        )
        legacy, v2 = issuers
        if legacy is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V1, legacy.encode()), critical=False
            )
        if v2 is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(OID_ISSUER_V2, der_utf8(v2)), critical=False
            )
        return builder

    def _sct_list(self, tbs_precert: bytes, when: datetime) -> bytes:
        issuer_hash = hashlib.sha256(spki(self.intermediate_key.public_key())).digest()
        millis = int(when.timestamp() * 1000)
        signed = (
            struct.pack("!BBQH", 0, 0, millis, 1)
            + issuer_hash
            + struct.pack("!I", len(tbs_precert))[1:]
            + tbs_precert
            + struct.pack("!H", 0)
        )
        sig = self.ct_key.sign(signed, ec.ECDSA(hashes.SHA256()))
        log_id = hashlib.sha256(spki(self.ct_key.public_key())).digest()
        sct = (
            struct.pack("!B", 0)
            + log_id
            + struct.pack("!QH", millis, 0)
            + struct.pack("!BBH", 4, 3, len(sig))
            + sig
        )
        return _octet_string(struct.pack("!H", len(sct) + 2) + struct.pack("!H", len(sct)) + sct)

    def issue_leaf(
        self,
        *,
        email: str | None = "builder@sluice.test",
        uri: str | None = None,
        issuer: str = "https://token.actions.githubusercontent.com",
        issuer_v2: str | None = "same",
        not_before: datetime | None = None,
        lifetime: timedelta = timedelta(minutes=10),
        with_sct: bool = True,
    ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
        """A Fulcio-style leaf; the SCT signs the TBS without itself, as a CT log signs a precertificate.

        The issuer goes into both 1.3.6.1.4.1.57264.1.1 and .1.8 like Fulcio writes it; `issuer_v2`
        None leaves .1.8 out (older Fulcio), another value makes the two disagree.
        """
        key = ec.generate_private_key(ec.SECP256R1())
        sans: list[x509.GeneralName] = []
        if email:
            sans.append(x509.RFC822Name(email))
        if uri:
            sans.append(x509.UniformResourceIdentifier(uri))
        not_before = not_before or self.since + timedelta(days=1)
        serial = x509.random_serial_number()
        issuers = (issuer, issuer if issuer_v2 == "same" else issuer_v2)
        builder = self._leaf_builder(key, sans, issuers, not_before, lifetime, serial)
        precert = builder.sign(self.intermediate_key, hashes.SHA384())
        if with_sct:
            sct = self._sct_list(precert.tbs_certificate_bytes, not_before)
            builder = builder.add_extension(x509.UnrecognizedExtension(OID_SCT_LIST, sct), critical=False)
        leaf = builder.sign(self.intermediate_key, hashes.SHA384())
        if with_sct:
            assert leaf.tbs_precertificate_bytes == precert.tbs_certificate_bytes
        return key, leaf

    # -- Rekor -------------------------------------------------------------------------------------

    def rekor_bundle(self, body: dict, integrated_time: datetime, log_index: int = 7) -> str:
        """The dev.sigstore.cosign/bundle annotation for a log entry `body`, with a valid SET."""
        body_b64 = base64.b64encode(json.dumps(body, separators=(",", ":")).encode()).decode()
        log_id = hashlib.sha256(spki(self.rekor_key.public_key())).hexdigest()
        when = int(integrated_time.timestamp())
        canonical = json.dumps(
            {"body": body_b64, "integratedTime": when, "logID": log_id, "logIndex": log_index},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        set_sig = self.rekor_key.sign(canonical, ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "SignedEntryTimestamp": base64.b64encode(set_sig).decode(),
                "Payload": {"body": body_b64, "integratedTime": when, "logIndex": log_index, "logID": log_id},
            }
        )


def cert_pem_b64(cert: x509.Certificate) -> str:
    return base64.b64encode(cert.public_bytes(Encoding.PEM)).decode()


def hashedrekord(artifact: bytes, signature: bytes, cert: x509.Certificate) -> dict:
    return {
        "apiVersion": "0.0.1",
        "kind": "hashedrekord",
        "spec": {
            "data": {"hash": {"algorithm": "sha256", "value": hashlib.sha256(artifact).hexdigest()}},
            "signature": {
                "content": base64.b64encode(signature).decode(),
                "publicKey": {"content": cert_pem_b64(cert)},
            },
        },
    }


def intoto_v001(envelope: bytes, payload: bytes, cert: x509.Certificate) -> dict:
    return {
        "apiVersion": "0.0.1",
        "kind": "intoto",
        "spec": {
            "content": {
                "hash": {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()},
                "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            },
            "publicKey": cert_pem_b64(cert),
        },
    }


def dsse_v001(envelope: bytes, payload: bytes, signature: bytes, cert: x509.Certificate) -> dict:
    return {
        "apiVersion": "0.0.1",
        "kind": "dsse",
        "spec": {
            "envelopeHash": {"algorithm": "sha256", "value": hashlib.sha256(envelope).hexdigest()},
            "payloadHash": {"algorithm": "sha256", "value": hashlib.sha256(payload).hexdigest()},
            "signatures": [
                {"signature": base64.b64encode(signature).decode(), "verifier": cert_pem_b64(cert)}
            ],
        },
    }


# --- cosign layer annotations, as `cosign sign` / `cosign attest` (keyless) write them -------------------

SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
CERTIFICATE_ANNOTATION = "dev.sigstore.cosign/certificate"
CHAIN_ANNOTATION = "dev.sigstore.cosign/chain"
BUNDLE_ANNOTATION = "dev.sigstore.cosign/bundle"
IN_TOTO = "application/vnd.in-toto+json"


def signature_annotations(
    sigstore: LocalSigstore, payload: bytes, *, logged_after: timedelta = timedelta(minutes=1), **leaf
) -> dict[str, str]:
    """A keyless `.sig` layer's annotations: signature, certificate, chain and Rekor bundle."""
    key, cert = sigstore.issue_leaf(**leaf)
    signature = key.sign(payload, ec.ECDSA(hashes.SHA256()))
    logged = cert.not_valid_before_utc + logged_after
    bundle = sigstore.rekor_bundle(hashedrekord(payload, signature, cert), logged)
    return {
        SIGNATURE_ANNOTATION: base64.b64encode(signature).decode(),
        CERTIFICATE_ANNOTATION: cert.public_bytes(Encoding.PEM).decode(),
        CHAIN_ANNOTATION: b"".join(
            c.public_bytes(Encoding.PEM) for c in (sigstore.intermediate, sigstore.root)
        ).decode(),
        BUNDLE_ANNOTATION: bundle,
    }


def attestation(
    sigstore: LocalSigstore, statement: bytes, predicate_type: str, *, entry: str = "dsse", **leaf
) -> tuple[bytes, dict[str, str]]:
    """A keyless `.att` layer: the DSSE envelope and its annotations (Rekor entry `dsse` or `intoto`)."""
    key, cert = sigstore.issue_leaf(**leaf)
    kind = IN_TOTO.encode()
    pae = b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(statement), statement)
    signature = key.sign(pae, ec.ECDSA(hashes.SHA256()))
    envelope = json.dumps(
        {
            "payloadType": IN_TOTO,
            "payload": base64.b64encode(statement).decode(),
            "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
        },
        separators=(",", ":"),
    ).encode()
    body = (
        dsse_v001(envelope, statement, signature, cert)
        if entry == "dsse"
        else intoto_v001(envelope, statement, cert)
    )
    when = cert.not_valid_before_utc + timedelta(seconds=30)
    return envelope, {
        "predicateType": predicate_type,
        SIGNATURE_ANNOTATION: "",
        CERTIFICATE_ANNOTATION: cert.public_bytes(Encoding.PEM).decode(),
        BUNDLE_ANNOTATION: sigstore.rekor_bundle(body, when),
    }
