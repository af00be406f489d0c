"""Keys the way cosign stores and uses them.

Public keys: PEM SubjectPublicKeyInfo. Private keys: cosign's encrypted PEM (`ENCRYPTED SIGSTORE
PRIVATE KEY`, older `ENCRYPTED COSIGN PRIVATE KEY`) whose body is go-securesystemslib's
`encrypted` JSON: scrypt key derivation + NaCl secretbox (XSalsa20-Poly1305) around a PKCS#8 DER
key. `cryptography` has no XSalsa20-Poly1305, hence PyNaCl.

Schemes follow cosign's defaults (sigstore LoadDefaultSignerVerifier, cosign GetDefaultLoadOptions):
ECDSA P-256 + SHA-256, ECDSA P-384 + SHA-384, and Ed25519 as **Ed25519ph** (RFC 8032 pre-hash,
empty context) because that is what cosign signs and verifies with an Ed25519 key. Pure Ed25519 is
available only when asked for by name, never as a silent fallback.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from typing import Literal

import nacl.bindings
import nacl.exceptions
import nacl.secret
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sluice.errors import SluiceError

PublicKey = ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
Ed25519Mode = Literal["ph", "pure"]

SIGSTORE_PEM_TYPE = "ENCRYPTED SIGSTORE PRIVATE KEY"
COSIGN_PEM_TYPE = "ENCRYPTED COSIGN PRIVATE KEY"
ENCRYPTED_PEM_TYPES = (SIGSTORE_PEM_TYPE, COSIGN_PEM_TYPE)
# go-securesystemslib/encrypted accepts exactly these scrypt parameter sets (legacy, standard, OWASP).
SCRYPT_PARAMS = ({"N": 32768, "r": 8, "p": 1}, {"N": 65536, "r": 8, "p": 1}, {"N": 131072, "r": 8, "p": 1})
SCRYPT_DEFAULT = SCRYPT_PARAMS[1]
_PEM_BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\s*(.*?)\s*-----END \1-----", re.S)
_CURVE_HASH = {"secp256r1": hashes.SHA256, "secp384r1": hashes.SHA384}


def pem_blocks(data: bytes) -> list[tuple[str, bytes]]:
    """(type, DER) for every PEM block; raises SluiceError when there is none or one is corrupt."""
    blocks = []
    for match in _PEM_BLOCK.finditer(data):
        try:
            der = base64.b64decode(b"".join(match.group(2).split()), validate=True)
        except ValueError as exc:
            raise SluiceError(f"PEM block {match.group(1).decode()} is not valid base64") from exc
        blocks.append((match.group(1).decode(), der))
    if not blocks:
        raise SluiceError("no PEM block found (expected -----BEGIN ...----- / -----END ...-----)")
    return blocks


def _check_supported(key: object, what: str) -> None:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if key.curve.name not in _CURVE_HASH:
            raise SluiceError(f"unsupported {what}: ECDSA curve {key.curve.name} (P-256 or P-384 only)")
        return
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return
    raise SluiceError(f"unsupported {what}: {type(key).__name__} (ECDSA P-256/P-384 or Ed25519 only)")


def load_public_key(pem: bytes) -> PublicKey:
    """The verification key from a PEM `PUBLIC KEY` (SPKI) block, as `cosign generate-key-pair` writes."""
    blocks = pem_blocks(pem)
    kinds = [kind for kind, _ in blocks]
    if kinds != ["PUBLIC KEY"]:
        raise SluiceError(f"expected exactly one PEM 'PUBLIC KEY' block, found {kinds}")
    try:
        key = serialization.load_der_public_key(blocks[0][1])
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SluiceError(f"public key does not parse: {exc}") from exc
    _check_supported(key, "public key")
    return key  # type: ignore[return-value]


def public_key_pem(key: PublicKey | PrivateKey) -> bytes:
    public = key.public_key() if hasattr(key, "public_key") else key
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_fingerprint(key: PublicKey | PrivateKey) -> str:
    """sha256 of the SPKI DER: a short, stable name for a key in messages and summaries."""
    public = key.public_key() if hasattr(key, "public_key") else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


# --- encrypted private keys -------------------------------------------------------------------------


def _scrypt(password: bytes, salt: bytes, params: dict) -> bytes:
    n, r, p = params["N"], params["r"], params["p"]
    return hashlib.scrypt(password, salt=salt, n=n, r=r, p=p, dklen=32, maxmem=256 * 1024 * 1024)


def decrypt_cosign_key(pem: bytes, password: bytes) -> bytes:
    """The PKCS#8 DER inside a cosign encrypted key. Wrong password -> SluiceError saying so."""
    blocks = pem_blocks(pem)
    if len(blocks) != 1 or blocks[0][0] not in ENCRYPTED_PEM_TYPES:
        raise SluiceError(f"not a cosign encrypted private key (PEM types {[k for k, _ in blocks]})")
    try:
        doc = json.loads(blocks[0][1])
        kdf, cipher = doc["kdf"], doc["cipher"]
        params = {k: kdf["params"][k] for k in ("N", "r", "p")}
        salt = base64.b64decode(kdf["salt"], validate=True)
        nonce = base64.b64decode(cipher["nonce"], validate=True)
        ciphertext = base64.b64decode(doc["ciphertext"], validate=True)
    except (ValueError, KeyError, TypeError) as exc:
        raise SluiceError(f"encrypted key body is not go-securesystemslib JSON: {exc}") from exc
    if kdf.get("name") != "scrypt":
        raise SluiceError(f"encrypted key uses kdf {kdf.get('name')!r}; cosign uses scrypt")
    if params not in SCRYPT_PARAMS:
        raise SluiceError(f"encrypted key has unsupported scrypt parameters {params}")
    if cipher.get("name") != "nacl/secretbox" or len(nonce) != nacl.secret.SecretBox.NONCE_SIZE:
        raise SluiceError(f"encrypted key uses cipher {cipher.get('name')!r}; cosign uses nacl/secretbox")
    box = nacl.secret.SecretBox(_scrypt(password, salt, params))
    try:
        return box.decrypt(ciphertext, nonce)
    except nacl.exceptions.CryptoError as exc:
        raise SluiceError(
            "cannot decrypt the private key: wrong password (COSIGN_PASSWORD) or corrupted key"
        ) from exc


def encrypt_cosign_key(der: bytes, password: bytes, params: dict | None = None) -> bytes:
    """Wrap PKCS#8 DER as cosign does; the JSON field order matches Go's struct order."""
    params = dict(params or SCRYPT_DEFAULT)
    salt, nonce = os.urandom(32), os.urandom(nacl.secret.SecretBox.NONCE_SIZE)
    box = nacl.secret.SecretBox(_scrypt(password, salt, params))
    ciphertext = box.encrypt(der, nonce).ciphertext
    doc = {
        "kdf": {"name": "scrypt", "params": params, "salt": base64.b64encode(salt).decode()},
        "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
        "ciphertext": base64.b64encode(ciphertext).decode(),
    }
    return to_pem(SIGSTORE_PEM_TYPE, json.dumps(doc, separators=(",", ":")).encode())


def to_pem(kind: str, der: bytes) -> bytes:
    body = base64.b64encode(der).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return ("\n".join([f"-----BEGIN {kind}-----", *lines, f"-----END {kind}-----"]) + "\n").encode()


def is_pkcs8(der: bytes) -> bool:
    """PrivateKeyInfo is SEQUENCE { INTEGER version, SEQUENCE algorithm, ... }; SEC1 has an OCTET STRING next.

    `cryptography` would happily load a SEC1 key too, so the shape is checked by hand.
    """
    try:
        if der[0] != 0x30:
            return False
        pos = 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)
        if der[pos] != 0x02:
            return False
        pos += 2 + der[pos + 1]
        return der[pos] == 0x30
    except IndexError:
        return False


def load_private_key(pem: bytes, password: bytes | None) -> PrivateKey:
    """A signing key from a cosign encrypted PEM (password needed) or an unencrypted PKCS#8 PEM.

    Like cosign's LoadPrivateKey, the decrypted plaintext must be PKCS#8: a SEC1 `EC PRIVATE KEY`
    inside the envelope is refused rather than guessed at.
    """
    blocks = pem_blocks(pem)
    kind = blocks[0][0]
    if kind in ENCRYPTED_PEM_TYPES:
        if password is None:
            raise SluiceError("the private key is encrypted: set COSIGN_PASSWORD (it may be empty)")
        der = decrypt_cosign_key(pem, password)
    elif kind == "PRIVATE KEY":
        der = blocks[0][1]
    else:
        raise SluiceError(f"unsupported private key PEM type {kind!r} (cosign encrypted key or PKCS#8)")
    if not is_pkcs8(der):
        raise SluiceError("decrypted private key is not PKCS#8 (SEC1 or other); cosign accepts only PKCS#8")
    try:
        key = serialization.load_der_private_key(der, password=None)
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise SluiceError(f"decrypted private key is not PKCS#8 (cosign accepts only PKCS#8): {exc}") from exc
    _check_supported(key, "private key")
    return key  # type: ignore[return-value]


def generate_key_pair(password: bytes, algorithm: str = "ecdsa-p256") -> tuple[bytes, bytes]:
    """(encrypted private PEM, public PEM); ECDSA P-256 is what `cosign generate-key-pair` makes."""
    if algorithm == "ecdsa-p256":
        key: PrivateKey = ec.generate_private_key(ec.SECP256R1())
    elif algorithm == "ecdsa-p384":
        key = ec.generate_private_key(ec.SECP384R1())
    elif algorithm == "ed25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise SluiceError(f"unknown key algorithm {algorithm!r} (ecdsa-p256, ecdsa-p384, ed25519)")
    der = key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return encrypt_cosign_key(der, password), public_key_pem(key)


# --- signatures -----------------------------------------------------------------------------------------


def _ed25519_ph_sign(key: ed25519.Ed25519PrivateKey, data: bytes) -> bytes:
    seed = key.private_bytes_raw()
    _, secret = nacl.bindings.crypto_sign_seed_keypair(seed)
    state = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(state, data)
    return nacl.bindings.crypto_sign_ed25519ph_final_create(state, secret)


def _ed25519_ph_verify(key: ed25519.Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    if len(signature) != 64:
        return False
    state = nacl.bindings.crypto_sign_ed25519ph_state()
    nacl.bindings.crypto_sign_ed25519ph_update(state, data)
    try:
        return bool(
            nacl.bindings.crypto_sign_ed25519ph_final_verify(state, signature, key.public_bytes_raw())
        )
    except nacl.exceptions.BadSignatureError:
        return False


def sign_bytes(key: PrivateKey, data: bytes, ed25519_mode: Ed25519Mode = "ph") -> bytes:
    """Raw signature bytes: ASN.1 DER for ECDSA, 64 bytes for Ed25519(ph)."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_CURVE_HASH[key.curve.name]()))
    if ed25519_mode == "ph":
        return _ed25519_ph_sign(key, data)
    return key.sign(data)


def verify_bytes(key: PublicKey, signature: bytes, data: bytes, ed25519_mode: Ed25519Mode = "ph") -> bool:
    if isinstance(key, ec.EllipticCurvePublicKey):
        try:
            key.verify(signature, data, ec.ECDSA(_CURVE_HASH[key.curve.name]()))
        except (InvalidSignature, ValueError):
            return False
        return True
    if ed25519_mode == "ph":
        return _ed25519_ph_verify(key, signature, data)
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def scheme_name(key: PublicKey | PrivateKey, ed25519_mode: Ed25519Mode = "ph") -> str:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ecdsa-p256-sha256", "secp384r1": "ecdsa-p384-sha384"}[key.curve.name]
    return "ed25519ph" if ed25519_mode == "ph" else "ed25519"
