"""`sluice verify`, `sluice sign`, `sluice keygen`: cosign-compatible, without the cosign binary.

Exit codes: 0 verified/written, 1 verification refused, 2 bad input (via SluiceError in gates/cli.py).
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
import tempfile
from pathlib import Path

from ml.errors import SluiceError

PASSWORD_ENV = "COSIGN_PASSWORD"  # noqa: S105 - the variable name


def _read(path: str, what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SluiceError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _password(confirm: bool = False) -> bytes:
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


def _atomic_write(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _common(parser: argparse.ArgumentParser) -> None:
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


def register(subparsers: argparse._SubParsersAction) -> None:
    verify = subparsers.add_parser(
        "verify",
        help="verify cosign signatures (and gate-evidence attestations) of an image by digest",
        description="Verify the tag-based cosign signatures of IMAGE@sha256:... with a public key.",
    )
    verify.add_argument("image", metavar="IMAGE@sha256:DIGEST")
    verify.add_argument("--key", required=True, metavar="cosign.pub", help="PEM public key")
    verify.add_argument(
        "--attestation",
        metavar="TYPE",
        help="also require an attestation of this predicate type URI ('sluice' = the gate-evidence type)",
    )
    verify.add_argument(
        "--rekor-key", metavar="rekor.pub", help="also require a Rekor SET valid under this key"
    )
    verify.add_argument("--json", action="store_true", help="print the verification summary as JSON")
    _common(verify)
    verify.set_defaults(func=run_verify)

    sign = subparsers.add_parser(
        "sign",
        help="sign (and attest) an image by digest in cosign's tag-based format (laptop/tests)",
        description="Write a cosign .sig signature and, with --attest, a .att gate-evidence attestation.",
    )
    sign.add_argument("image", metavar="IMAGE@sha256:DIGEST")
    sign.add_argument(
        "--key",
        required=True,
        metavar="cosign.key",
        help="cosign encrypted key (password in COSIGN_PASSWORD)",
    )
    sign.add_argument("--attest", metavar="EVIDENCE.json", help="also attest this JSON as the predicate")
    sign.add_argument(
        "--type", dest="predicate_type", metavar="URI", help="predicate type (default: Sluice gate evidence)"
    )
    sign.add_argument(
        "--attest-only", action="store_true", help="write the attestation without a new signature"
    )
    _common(sign)
    sign.set_defaults(func=run_sign)

    keygen = subparsers.add_parser(
        "keygen",
        help="generate a cosign-format key pair (PREFIX.key encrypted, PREFIX.pub)",
        description="Like `cosign generate-key-pair`: password from COSIGN_PASSWORD (may be empty).",
    )
    keygen.add_argument("--out-prefix", required=True, metavar="PATH", help="writes PATH.key and PATH.pub")
    keygen.add_argument("--algorithm", choices=("ecdsa-p256", "ecdsa-p384", "ed25519"), default="ecdsa-p256")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=run_keygen)


def run_verify(args: argparse.Namespace) -> int:
    from gates.supply_chain import keys
    from gates.supply_chain.constants import PREDICATE_TYPE
    from gates.supply_chain.verify import VerificationError, verify_image

    attestation = PREDICATE_TYPE if args.attestation == "sluice" else args.attestation
    public_pem = _read(args.key, "public key")
    try:
        keys.load_public_key(public_pem)
    except SluiceError as exc:
        raise SluiceError(f"public key {args.key}: {exc}") from exc
    try:
        summary = verify_image(
            args.image,
            public_pem,
            attestation_type=attestation,
            docker_config=args.docker_config,
            allow_insecure_loopback=args.allow_insecure_loopback,
            ed25519_mode=args.ed25519_mode,
            rekor_public_key_pem=_read(args.rekor_key, "Rekor key") if args.rekor_key else None,
        )
    except VerificationError as exc:
        print(f"sluice: verify: refused: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
    else:
        line = (
            f"verified {summary['image']}: {len(summary['signatures'])} signature(s) by key {summary['key']}"
        )
        if summary["attestation"]:
            line += f", {len(summary['attestation']['verified'])} {attestation} attestation(s)"
            if attestation == PREDICATE_TYPE:
                line += " with passing gate evidence"
        print(line)
    return 0


def run_sign(args: argparse.Namespace) -> int:
    from gates.supply_chain import keys
    from gates.supply_chain.constants import PREDICATE_TYPE
    from gates.supply_chain.sign import attest_image, sign_image

    if args.attest_only and not args.attest:
        raise SluiceError("--attest-only needs --attest EVIDENCE.json")
    if args.predicate_type and not args.attest:
        raise SluiceError("--type needs --attest EVIDENCE.json")
    predicate = None
    if args.attest:
        try:
            predicate = json.loads(_read(args.attest, "evidence"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SluiceError(f"evidence {args.attest} is not JSON: {exc}") from exc
        if not isinstance(predicate, dict):
            raise SluiceError(f"evidence {args.attest} is not a JSON object")
    pem = _read(args.key, "private key")
    try:
        encrypted = keys.pem_blocks(pem)[0][0] in keys.ENCRYPTED_PEM_TYPES
        private_key = keys.load_private_key(pem, _password() if encrypted else None)
    except SluiceError as exc:
        raise SluiceError(f"private key {args.key}: {exc}") from exc
    common = {
        "docker_config": args.docker_config,
        "allow_insecure_loopback": args.allow_insecure_loopback,
        "ed25519_mode": args.ed25519_mode,
    }
    if not args.attest_only:
        done = sign_image(args.image, private_key, **common)
        print(f"signed {done['image']} -> {done['tag']} ({done['manifest']})")
    if predicate is not None:
        done = attest_image(
            args.image, private_key, predicate, args.predicate_type or PREDICATE_TYPE, **common
        )
        print(f"attested {done['image']} ({done['predicate_type']}) -> {done['tag']} ({done['manifest']})")
    return 0


def run_keygen(args: argparse.Namespace) -> int:
    from gates.supply_chain import keys

    prefix = Path(args.out_prefix)
    key_path, pub_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    if not prefix.parent.is_dir():
        raise SluiceError(f"directory {prefix.parent} does not exist")
    existing = [str(p) for p in (key_path, pub_path) if p.exists()]
    if existing and not args.force:
        raise SluiceError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    private_pem, public_pem = keys.generate_key_pair(_password(confirm=True), args.algorithm)
    _atomic_write(key_path, private_pem, 0o600)
    _atomic_write(pub_path, public_pem, 0o644)
    print(f"Private key written to {key_path}\nPublic key written to {pub_path}")
    return 0
