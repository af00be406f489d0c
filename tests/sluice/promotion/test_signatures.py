"""Promotion's signature check with a keyless identity instead of a key: the flags of `sluice promote`
and `sluice rollback`, and the verdicts on keyless-signed images in a real registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cli import build_parser
from sluice.cli import main as sluice_main
from sluice.cli.promotion_options import signature_trust
from sluice.errors import Refused, SluiceError
from sluice.promotion.signatures import KEY_ENV, key_trust, signature_verifier
from sluice.supply_chain.keyless import IdentityPolicy
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.trust import KeylessTrust, KeyTrust
from sluice.supply_chain.trust_root import parse_trusted_root
from tests.sluice.supply_chain.test_keyless_registry import GITHUB, WORKFLOW, keyless_image
from tests.sluice.supply_chain.testpki import LocalSigstore

PROMOTE = ["promote", "--model", "credit-default", "--version", "1", "--env", "production"]


@pytest.fixture(scope="module")
def sigstore() -> LocalSigstore:
    return LocalSigstore()


def parse(verb: str, *args: str):
    return build_parser(verb).parse_args([verb, *args])


@pytest.mark.parametrize("verb", ["promote", "rollback"])
def test_promotion_verbs_take_cosigns_keyless_flags(verb: str, sigstore, tmp_path: Path, monkeypatch) -> None:
    root = tmp_path / "trusted_root.json"
    root.write_bytes(sigstore.trusted_root())
    monkeypatch.setenv(KEY_ENV, "/nonexistent/cosign.pub")  # an environment key gives way to the flags
    args = parse(
        verb,
        *PROMOTE[1:] if verb == "promote" else ["--model", "m", "--env", "production"],
        "--certificate-identity",
        WORKFLOW,
        "--certificate-oidc-issuer",
        GITHUB,
        "--trusted-root",
        str(root),
    )
    trust = signature_trust(args)
    assert isinstance(trust, KeylessTrust)
    assert trust.identity == IdentityPolicy(subject=WORKFLOW, issuer=GITHUB) and trust.require_sct


def test_promote_refuses_ambiguous_or_half_given_identities(capsys, tmp_path: Path) -> None:
    pub = tmp_path / "cosign.pub"
    pub.write_text("not used")
    both = sluice_main(
        [*PROMOTE, "--key", str(pub), "--certificate-identity", WORKFLOW, "--certificate-oidc-issuer", GITHUB]
    )
    assert both == 2 and "either --key or a keyless identity" in capsys.readouterr().err
    half = sluice_main([*PROMOTE, "--certificate-identity", WORKFLOW])
    assert half == 2 and "exactly one of --certificate-oidc-issuer" in capsys.readouterr().err


@pytest.mark.slow
def test_production_verifies_keyless_signed_images(oci_registry: str, sigstore) -> None:
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    image = keyless_image(client, oci_registry, sigstore, b"promotion, keyless")
    root = parse_trusted_root(sigstore.trusted_root(), "test trusted root")
    trust = KeylessTrust(root, IdentityPolicy(subject=WORKFLOW, issuer=GITHUB))
    signature_verifier("production", trust, allow_insecure_loopback=True)(image)  # no exception

    stranger = KeylessTrust(root, IdentityPolicy(subject="https://github.com/evil/x", issuer=GITHUB))
    with pytest.raises(Refused, match=f"refusing {image}: no valid signature .* does not match"):
        signature_verifier("production", stranger, allow_insecure_loopback=True)(image)
    failing = keyless_image(client, oci_registry, sigstore, b"promotion, failing gate", passed=False)
    with pytest.raises(Refused, match="gate evidence says passed=false"):
        signature_verifier("production", trust, allow_insecure_loopback=True)(failing)


def test_key_trust_names_a_bad_key() -> None:
    assert key_trust(None) is None
    with pytest.raises(SluiceError, match=f"cosign public key \\(--key or \\${KEY_ENV}\\)"):
        key_trust(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    assert isinstance(signature_trust(parse("promote", *PROMOTE[1:])), type(None))
    assert KeyTrust  # the key path is covered by test_promote.py with real signed images
