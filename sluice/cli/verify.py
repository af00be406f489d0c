"""`sluice verify IMAGE@sha256:…`: cosign signatures and attestations, without the cosign binary.

Exit codes: 0 verified, 1 refused (the reason on one line), 2 bad input or unreachable registry.
"""

from __future__ import annotations

import argparse
import json
import sys

from sluice.cli.signing_options import read_file, registry_options
from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    verify = subparsers.add_parser(
        "verify",
        help=summary,
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
    registry_options(verify)
    verify.set_defaults(func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from sluice.supply_chain import keys
    from sluice.supply_chain.constants import PREDICATE_TYPE
    from sluice.supply_chain.verify import VerificationError, verify_image

    attestation = PREDICATE_TYPE if args.attestation == "sluice" else args.attestation
    public_pem = read_file(args.key, "public key")
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
            rekor_public_key_pem=read_file(args.rekor_key, "Rekor key") if args.rekor_key else None,
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
