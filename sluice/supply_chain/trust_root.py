"""The Sigstore trusted root: which Fulcio CAs, Rekor keys and CT log keys a keyless signature may use.

Format: `application/vnd.dev.sigstore.trustedroot+json;version=0.1` (sigstore/protobuf-specs
TrustedRoot, as read by sigstore-go pkg/root/trusted_root.go and written by
`cosign trusted-root create`). Bytes fields are base64 DER; every entry has a `validFor` window
that bounds the time at which it may be used.

The public-good root comes from the `sigstore` PyPI package (pinned), which embeds the TUF target
it bootstraps from (sigstore/_store/https%3A%2F%2Ftuf-repo-cdn.sigstore.dev/trusted_root.json).
Only that JSON file is read, nothing of sigstore's code runs: no TUF refresh, no network. A newer
root (key rotation) arrives with a newer `sigstore` release, or the user passes `--trusted-root
FILE` (e.g. made by `cosign trusted-root create`, or the TUF target downloaded and checked).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from sluice.errors import SluiceError

MEDIA_TYPE_PREFIX = "application/vnd.dev.sigstore.trustedroot"
PUBLIC_GOOD_TUF_URL = "https://tuf-repo-cdn.sigstore.dev"
MAX_TRUSTED_ROOT_BYTES = 1024 * 1024  # the public-good root is ~7 KiB
MAX_ENTRIES = 64
_EMBEDDED = ("_store", "https%3A%2F%2Ftuf-repo-cdn.sigstore.dev", "trusted_root.json")


class TrustRootError(SluiceError):
    """The trusted root cannot be read or is malformed (bad input: exit 2)."""


@dataclass(frozen=True)
class Window:
    """`validFor`: start inclusive; an open end means still valid."""

    start: datetime
    end: datetime | None

    def contains(self, when: datetime) -> bool:
        return self.start <= when and (self.end is None or when <= self.end)


@dataclass(frozen=True)
class CertificateAuthority:
    uri: str
    intermediates: tuple[x509.Certificate, ...]
    root: x509.Certificate
    valid_for: Window


@dataclass(frozen=True)
class LogKey:
    """A Rekor (v1) or CT log key; `log_id` is what SETs and SCTs name (sha256 of the DER SPKI)."""

    url: str
    log_id: bytes
    key: ec.EllipticCurvePublicKey
    valid_for: Window


@dataclass(frozen=True)
class TrustedRoot:
    certificate_authorities: tuple[CertificateAuthority, ...]
    rekor_logs: tuple[LogKey, ...]
    ct_logs: tuple[LogKey, ...]
    description: str = "the trusted root"  # how refusals name it

    def rekor_key(self, log_id: bytes) -> LogKey | None:
        return next((log for log in self.rekor_logs if log.log_id == log_id), None)

    def ct_key(self, log_id: bytes) -> LogKey | None:
        return next((log for log in self.ct_logs if log.log_id == log_id), None)


def _time(value: Any, where: str) -> datetime:
    if not isinstance(value, str):
        raise TrustRootError(f"trusted root: {where} is not an RFC 3339 time")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise TrustRootError(f"trusted root: {where} {value!r} is not an RFC 3339 time") from exc
    if parsed.tzinfo is None:
        raise TrustRootError(f"trusted root: {where} {value!r} has no time zone")
    return parsed.astimezone(UTC)


def _window(doc: Any, where: str) -> Window:
    if not isinstance(doc, dict) or "start" not in doc:
        raise TrustRootError(f"trusted root: {where}.validFor.start is missing")
    end = doc.get("end")
    return Window(
        _time(doc["start"], f"{where}.validFor.start"), _time(end, f"{where}.validFor.end") if end else None
    )


def _b64(value: Any, where: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, TypeError, ValueError) as exc:
        raise TrustRootError(f"trusted root: {where} is not base64") from exc


def _list(doc: dict[str, Any], key: str) -> list[Any]:
    value = doc.get(key) or []
    if not isinstance(value, list) or len(value) > MAX_ENTRIES:
        raise TrustRootError(f"trusted root: {key} is not a list of at most {MAX_ENTRIES} entries")
    return value


def _certificate_authority(doc: Any, index: int) -> CertificateAuthority:
    where = f"certificateAuthorities[{index}]"
    try:
        raw = [_b64(c["rawBytes"], f"{where} certificate") for c in doc["certChain"]["certificates"]]
        chain = [x509.load_der_x509_certificate(der) for der in raw]
    except (KeyError, TypeError, ValueError) as exc:
        raise TrustRootError(f"trusted root: {where}.certChain is malformed: {exc}") from exc
    if not chain:
        raise TrustRootError(f"trusted root: {where}.certChain has no certificates")
    # Ordered leaf-most intermediate first, root last (protobuf-specs X509CertificateChain).
    return CertificateAuthority(
        str(doc.get("uri", "")), tuple(chain[:-1]), chain[-1], _window(doc.get("validFor"), where)
    )


def _log_key(doc: Any, where: str) -> LogKey | None:
    """An ECDSA log key, or None for key types no legacy SET/SCT can use (e.g. Rekor v2 Ed25519)."""
    try:
        public = doc["publicKey"]
        der = _b64(public["rawBytes"], f"{where}.publicKey.rawBytes")
        log_id = _b64(doc["logId"]["keyId"], f"{where}.logId.keyId")
    except (KeyError, TypeError) as exc:
        raise TrustRootError(f"trusted root: {where} lacks publicKey.rawBytes or logId.keyId") from exc
    if not str(public.get("keyDetails", "")).startswith("PKIX_ECDSA_"):
        return None
    try:
        key = serialization.load_der_public_key(der)
    except ValueError as exc:
        raise TrustRootError(f"trusted root: {where}.publicKey is not a DER public key") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise TrustRootError(f"trusted root: {where} says ECDSA but holds another key type")
    if hashlib.sha256(der).digest() != log_id:
        raise TrustRootError(f"trusted root: {where}.logId.keyId is not sha256 of its public key")
    return LogKey(str(doc.get("baseUrl", "")), log_id, key, _window(public.get("validFor"), where))


def parse_trusted_root(data: bytes, source: str) -> TrustedRoot:
    """Parse and check a trusted root; raise TrustRootError naming `source` and the problem."""
    if len(data) > MAX_TRUSTED_ROOT_BYTES:
        raise TrustRootError(f"{source}: larger than {MAX_TRUSTED_ROOT_BYTES} bytes; not a trusted root")
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise TrustRootError(f"{source}: not JSON ({exc})") from exc
    if not isinstance(doc, dict) or not str(doc.get("mediaType", "")).startswith(MEDIA_TYPE_PREFIX):
        raise TrustRootError(
            f"{source}: mediaType is not {MEDIA_TYPE_PREFIX}+json; pass a Sigstore trusted_root.json"
        )
    try:
        cas = tuple(
            _certificate_authority(ca, i) for i, ca in enumerate(_list(doc, "certificateAuthorities"))
        )
        tlogs = tuple(k for i, t in enumerate(_list(doc, "tlogs")) if (k := _log_key(t, f"tlogs[{i}]")))
        ctlogs = tuple(k for i, t in enumerate(_list(doc, "ctlogs")) if (k := _log_key(t, f"ctlogs[{i}]")))
    except TrustRootError as exc:
        raise TrustRootError(f"{source}: {exc}") from exc
    if not cas:
        raise TrustRootError(f"{source}: no certificateAuthorities; keyless verification needs a Fulcio CA")
    return TrustedRoot(cas, tlogs, ctlogs)


def load_trusted_root(path: str | None = None) -> TrustedRoot:
    """`--trusted-root FILE`, or the Sigstore public-good root shipped by the `sigstore` package."""
    if path:
        try:
            return parse_trusted_root(Path(path).read_bytes(), path)
        except OSError as exc:
            raise TrustRootError(f"cannot read trusted root {path}: {exc.strerror}") from exc
    try:
        embedded = resources.files("sigstore").joinpath(*_EMBEDDED)
        data = embedded.read_bytes()
    except (ModuleNotFoundError, FileNotFoundError, OSError) as exc:
        raise TrustRootError(
            "the Sigstore public-good trusted root ships with the 'sigstore' package, which is not "
            "installed (or moved its file); install sigstore or pass --trusted-root FILE"
        ) from exc
    return parse_trusted_root(data, f"sigstore package ({PUBLIC_GOOD_TUF_URL})")


def rekor_key_root(key: ec.EllipticCurvePublicKey) -> TrustedRoot:
    """A root holding only one Rekor key (`--rekor-key` with a public key), valid at any time."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    log = LogKey(
        "--rekor-key", hashlib.sha256(der).digest(), key, Window(datetime.fromtimestamp(0, UTC), None)
    )
    return TrustedRoot((), (log,), (), "the --rekor-key")
