"""`sluice keygen --out-prefix PATH`: a cosign-format key pair, like `cosign generate-key-pair`."""

from __future__ import annotations

import argparse
from pathlib import Path

from sluice.atomic import write_bytes
from sluice.cli.signing_options import password
from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    keygen = subparsers.add_parser(
        "keygen",
        help=summary,
        description="Like `cosign generate-key-pair`: password from COSIGN_PASSWORD (may be empty).",
    )
    keygen.add_argument("--out-prefix", required=True, metavar="PATH", help="writes PATH.key and PATH.pub")
    keygen.add_argument("--algorithm", choices=("ecdsa-p256", "ecdsa-p384", "ed25519"), default="ecdsa-p256")
    keygen.add_argument("--force", action="store_true", help="overwrite existing files")
    keygen.set_defaults(func=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    from sluice.supply_chain import keys

    prefix = Path(args.out_prefix)
    key_path, pub_path = prefix.with_name(prefix.name + ".key"), prefix.with_name(prefix.name + ".pub")
    if not prefix.parent.is_dir():
        raise SluiceError(f"directory {prefix.parent} does not exist")
    existing = [str(p) for p in (key_path, pub_path) if p.exists()]
    if existing and not args.force:
        raise SluiceError(f"refusing to overwrite {', '.join(existing)} (use --force)")
    private_pem, public_pem = keys.generate_key_pair(password(confirm=True), args.algorithm)
    write_bytes(key_path, private_pem, 0o600)
    write_bytes(pub_path, public_pem, 0o644)
    print(f"Private key written to {key_path}\nPublic key written to {pub_path}")
    return 0
