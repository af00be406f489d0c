"""Options and helpers the supply-chain verbs share (`verify`, `sign`, `keygen`, and the
signature options of `promote` and `rollback`)."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.errors import SluiceError

if TYPE_CHECKING:
    from sluice.supply_chain.trust import Trust

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable name
IDENTITY_FLAGS = (
    "certificate_identity",
    "certificate_identity_regexp",
    "certificate_oidc_issuer",
    "certificate_oidc_issuer_regexp",
)


def read_file(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SluiceError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def password(confirm: bool = False) -> bytes:
    """COSIGN_PASSWORD (may be empty, as with cosign), else a prompt when there is a terminal."""
    value = os.environ.get(PASSWORD_ENV)
    if value is not None:
        return value.encode()
    if not sys.stdin.isatty():
        raise SluiceError(f"set {PASSWORD_ENV} (it may be empty) or run in a terminal to be prompted")
    first = getpass.getpass("Enter password for private key: ")
    if confirm and getpass.getpass("Enter password for private key again: ") != first:
        raise SluiceError("passwords do not match")
    return first.encode()


def registry_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--docker-config",
        metavar="PATH",
        help="docker config.json (or its directory) for registry credentials",
    )
    parser.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        help="talk plain HTTP to a registry on localhost/127.0.0.1/::1 (never elsewhere)",
    )
    parser.add_argument(
        "--ed25519-mode",
        choices=("ph", "pure"),
        default="ph",
        help="Ed25519 keys: ph = Ed25519ph as cosign does (default), pure = plain Ed25519",
    )


def keyless_options(parser: argparse.ArgumentParser) -> None:
    """cosign's keyless verification flags (Fulcio certificate identity, Rekor via a trusted root)."""
    group = parser.add_argument_group(
        "keyless signatures (Fulcio certificate + Rekor), instead of --key; cosign's flag names"
    )
    group.add_argument("--certificate-identity", metavar="ID", help="the certificate's SAN, exactly")
    group.add_argument(
        "--certificate-identity-regexp",
        metavar="RE",
        help="a regexp searched in the SANs (anchor with ^...$)",
    )
    group.add_argument("--certificate-oidc-issuer", metavar="URL", help="the OIDC issuer, exactly")
    group.add_argument("--certificate-oidc-issuer-regexp", metavar="RE", help="a regexp for the OIDC issuer")
    group.add_argument(
        "--trusted-root",
        metavar="FILE",
        help="Sigstore trusted_root.json with the Fulcio CAs, Rekor and CT log keys "
        "(default: the public-good root shipped with the pinned sigstore package)",
    )
    group.add_argument(
        "--insecure-ignore-sct",
        action="store_true",
        help="accept certificates without an embedded SCT (a private Fulcio without CT)",
    )


def keyless_requested(args: argparse.Namespace) -> bool:
    return any(getattr(args, flag, None) for flag in IDENTITY_FLAGS)


def trust_from_args(args: argparse.Namespace, key_pem: bytes | None, key_name: str) -> Trust | None:
    """The signer to verify against: the keyless identity the flags give, else the key, else None.

    `--key` and identity flags together are a usage error; a key that only comes from the
    environment (`key_name` says where) gives way to identity flags.
    """
    from sluice.supply_chain.trust import KeylessTrust, KeyTrust

    if not keyless_requested(args):
        if args.trusted_root or args.insecure_ignore_sct:
            raise SluiceError(
                "--trusted-root and --insecure-ignore-sct go with --certificate-identity[-regexp] "
                "and --certificate-oidc-issuer[-regexp]"
            )
        if key_pem is None:
            return None
        try:
            return KeyTrust.from_pem(key_pem, ed25519_mode=getattr(args, "ed25519_mode", "ph"))
        except SluiceError as exc:
            raise SluiceError(f"public key {key_name}: {exc}") from exc
    if args.key:
        raise SluiceError("give either --key or a keyless identity (--certificate-identity ...), not both")
    from sluice.supply_chain.keyless import IdentityPolicy
    from sluice.supply_chain.trust_root import load_trusted_root

    identity = IdentityPolicy(
        subject=args.certificate_identity,
        subject_regexp=args.certificate_identity_regexp,
        issuer=args.certificate_oidc_issuer,
        issuer_regexp=args.certificate_oidc_issuer_regexp,
    )
    return KeylessTrust(
        load_trusted_root(args.trusted_root), identity, require_sct=not args.insecure_ignore_sct
    )
