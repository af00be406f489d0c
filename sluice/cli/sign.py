"""`sluice sign IMAGE@sha256:… --key cosign.key [--attest EVIDENCE.json]`: cosign's tag-based format.

For laptops and tests; Tekton signs with the real cosign CLI.
"""

from __future__ import annotations

import argparse
import json

from sluice.cli.signing_options import password, read_file, registry_options
from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    sign = subparsers.add_parser(
        "sign",
        help=summary,
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
    registry_options(sign)
    sign.set_defaults(func=run_sign)


def run_sign(args: argparse.Namespace) -> int:
    from sluice.supply_chain import keys
    from sluice.supply_chain.constants import PREDICATE_TYPE
    from sluice.supply_chain.sign import attest_image, sign_image

    if args.attest_only and not args.attest:
        raise SluiceError("--attest-only needs --attest EVIDENCE.json")
    if args.predicate_type and not args.attest:
        raise SluiceError("--type needs --attest EVIDENCE.json")
    predicate = None
    if args.attest:
        try:
            predicate = json.loads(read_file(args.attest, "evidence"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SluiceError(f"evidence {args.attest} is not JSON: {exc}") from exc
        if not isinstance(predicate, dict):
            raise SluiceError(f"evidence {args.attest} is not a JSON object")
    pem = read_file(args.key, "private key")
    try:
        encrypted = keys.pem_blocks(pem)[0][0] in keys.ENCRYPTED_PEM_TYPES
        private_key = keys.load_private_key(pem, password() if encrypted else None)
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
