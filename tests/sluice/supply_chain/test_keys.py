"""Keys: cosign's encrypted format both ways, the upstream key fixtures, and the signing schemes."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from sluice.errors import SluiceError
from sluice.supply_chain import keys


@pytest.fixture(scope="module")
def keys_test(cosign_fixtures: Path) -> Path:
    return cosign_fixtures / "cosign" / "extracted" / "keys_test"


@pytest.mark.parametrize(
    ("name", "pem_type", "n"),
    [
        ("pemcosignkey.pem", "ENCRYPTED COSIGN PRIVATE KEY", 32768),
        ("pemsigstorekey.pem", "ENCRYPTED SIGSTORE PRIVATE KEY", 32768),
    ],
)
def test_cosign_keys_test_fixtures_decrypt_with_hello(
    keys_test: Path, name: str, pem_type: str, n: int
) -> None:
    pem = (keys_test / name).read_bytes()
    assert keys.pem_blocks(pem)[0][0] == pem_type
    assert json.loads(keys.pem_blocks(pem)[0][1])["kdf"]["params"]["N"] == n
    key = keys.load_private_key(pem, b"hello")
    assert isinstance(key, ec.EllipticCurvePrivateKey)  # keys_test.go calls it "RSA"; it is EC
    signature = keys.sign_bytes(key, b"payload")
    assert keys.verify_bytes(key.public_key(), signature, b"payload")


def test_sec1_plaintext_is_refused_like_cosign(keys_test: Path) -> None:
    pem = (keys_test / "pemcosigneckey.pem").read_bytes()
    der = keys.decrypt_cosign_key(pem, b"hello")  # the password is right...
    assert der[:2] == b"\x30\x77"  # ...and the plaintext is a SEC1 ECPrivateKey, not PKCS#8
    with pytest.raises(SluiceError, match="not PKCS#8"):
        keys.load_private_key(pem, b"hello")


@pytest.mark.parametrize("name", ["pemcosignkey.pem", "pemsigstorekey.pem", "pemcosigneckey.pem"])
def test_wrong_password_is_named(keys_test: Path, name: str) -> None:
    with pytest.raises(SluiceError, match="wrong password"):
        keys.load_private_key((keys_test / name).read_bytes(), b"hell")


def test_unencrypted_fixture_keys(keys_test: Path) -> None:
    assert isinstance(
        keys.load_private_key((keys_test / "validecpkcs8.pem").read_bytes(), None), ec.EllipticCurvePrivateKey
    )
    assert isinstance(
        keys.load_private_key((keys_test / "ed25519key.pem").read_bytes(), None), ed25519.Ed25519PrivateKey
    )
    with pytest.raises(SluiceError, match="unsupported private key PEM type 'EC PRIVATE KEY'"):
        keys.load_private_key((keys_test / "validecp256.pem").read_bytes(), None)


def test_policy_controller_key_has_empty_password_and_matches_its_pub(cosign_fixtures: Path) -> None:
    base = cosign_fixtures / "policy-controller" / "examples" / "keys"
    private = keys.load_private_key((base / "cosign.key").read_bytes(), b"")
    public = keys.load_public_key((base / "cosign.pub").read_bytes())
    assert keys.key_fingerprint(private) == keys.key_fingerprint(public)
    with pytest.raises(SluiceError, match="wrong password"):
        keys.load_private_key((base / "cosign.key").read_bytes(), b"x")


def test_cosign_ci_key_parses_but_password_is_unknown(cosign_fixtures: Path) -> None:
    base = cosign_fixtures / "cosign" / ".github" / "workflows"
    with pytest.raises(SluiceError, match="wrong password"):
        keys.load_private_key((base / "cosign-test.key").read_bytes(), b"")
    assert isinstance(
        keys.load_public_key((base / "cosign-test.pub").read_bytes()), ec.EllipticCurvePublicKey
    )


@pytest.mark.parametrize("algorithm", ["ecdsa-p256", "ecdsa-p384", "ed25519"])
def test_generated_pair_round_trips(algorithm: str) -> None:
    private_pem, public_pem = keys.generate_key_pair(b"s3cret", algorithm)
    kind, body = keys.pem_blocks(private_pem)[0]
    assert kind == "ENCRYPTED SIGSTORE PRIVATE KEY"
    doc = json.loads(body)
    assert list(doc) == ["kdf", "cipher", "ciphertext"]
    assert doc["kdf"]["params"] == {"N": 65536, "r": 8, "p": 1}
    assert doc["cipher"]["name"] == "nacl/secretbox"
    assert len(base64.b64decode(doc["kdf"]["salt"])) == 32
    private = keys.load_private_key(private_pem, b"s3cret")
    public = keys.load_public_key(public_pem)
    assert keys.key_fingerprint(private) == keys.key_fingerprint(public)
    assert keys.verify_bytes(public, keys.sign_bytes(private, b"data"), b"data")
    assert not keys.verify_bytes(public, keys.sign_bytes(private, b"data"), b"datA")


def test_unsupported_scrypt_parameters_are_refused() -> None:
    private_pem, _ = keys.generate_key_pair(b"")
    doc = json.loads(keys.pem_blocks(private_pem)[0][1])
    doc["kdf"]["params"]["N"] = 1024
    weak = keys.to_pem(keys.SIGSTORE_PEM_TYPE, json.dumps(doc).encode())
    with pytest.raises(SluiceError, match="unsupported scrypt parameters"):
        keys.load_private_key(weak, b"")


def test_public_key_must_be_a_single_public_key_block(keys_test: Path) -> None:
    with pytest.raises(SluiceError, match="PUBLIC KEY"):
        keys.load_public_key((keys_test / "validecpkcs8.pem").read_bytes())
    with pytest.raises(SluiceError, match="no PEM block"):
        keys.load_public_key(b"not a key")


def test_ed25519ph_matches_rfc8032_test_vector() -> None:
    """RFC 8032 section 7.3, "TEST abc": the scheme cosign uses for Ed25519 keys."""
    seed = bytes.fromhex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42")
    key = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    assert key.public_key().public_bytes_raw().hex() == (
        "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf"
    )
    signature = keys.sign_bytes(key, b"abc", "ph")
    assert signature.hex() == (
        "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41"
        "31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406"
    )
    assert keys.verify_bytes(key.public_key(), signature, b"abc", "ph")


def test_ed25519_modes_do_not_cross_verify(keys_test: Path) -> None:
    key = keys.load_private_key((keys_test / "ed25519key.pem").read_bytes(), None)
    public = key.public_key()
    ph, pure = keys.sign_bytes(key, b"m", "ph"), keys.sign_bytes(key, b"m", "pure")
    assert keys.verify_bytes(public, ph, b"m", "ph") and keys.verify_bytes(public, pure, b"m", "pure")
    assert not keys.verify_bytes(public, ph, b"m", "pure")
    assert not keys.verify_bytes(public, pure, b"m", "ph")
