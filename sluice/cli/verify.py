"""`sluice verify IMAGE@sha256:…`: cosign signatures and attestations, without the cosign binary.

Signed with a key (`--key cosign.pub`) or keyless (`--certificate-identity[-regexp]` and
`--certificate-oidc-issuer[-regexp]`, checked offline against a Sigstore trusted root).
Exit codes: 0 verified, 1 refused (the reason on one line), 2 bad input or unreachable registry.
"""

from __future__ import annotations

import argparse
import json

from sluice.cli.signing_options import keyless_options, read_file, registry_options, trust_from_args
from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    verify = subparsers.add_parser(
        "verify",
        help=summary,
        description=(
            "Verify the tag-based cosign signatures of IMAGE@sha256:... with a public key, or keyless "
            "with a certificate identity and OIDC issuer (offline, against a Sigstore trusted root)."
        ),
    )
    verify.add_argument("image", metavar="IMAGE@sha256:DIGEST")
    verify.add_argument("--key", metavar="cosign.pub", help="PEM public key")
    verify.add_argument(
        "--attestation",
        metavar="TYPE",
        help="also require an attestation of this predicate type URI ('sluice' = the gate-evidence type)",
    )
    verify.add_argument(
        "--rekor-key", metavar="rekor.pub", help="with --key: also require a Rekor SET by this key"
    )
    verify.add_argument(
        "--max-signatures",
        type=int,
        metavar="N",
        help="refuse a .sig/.att image with more than N layers, unread (default: 1000, cosign's limit)",
    )
    verify.add_argument("--json", action="store_true", help="print the verification summary as JSON")
    keyless_options(verify)
    registry_options(verify)
    verify.set_defaults(func=run_verify)


def _trust(args: argparse.Namespace):
    """KeyTrust from --key (and --rekor-key), or KeylessTrust from the identity flags."""
    from sluice.supply_chain.trust import KeyTrust

    if args.rekor_key and not args.key:
        raise SluiceError(
            "--rekor-key goes with --key; keyless signatures are checked with the trusted root's Rekor"
        )
    trust = trust_from_args(args, None, "")
    if trust is not None:
        return trust
    if not args.key:
        raise SluiceError(
            "verify needs --key cosign.pub, or --certificate-identity[-regexp] with "
            "--certificate-oidc-issuer[-regexp] for keyless signatures"
        )
    pem = read_file(args.key, "public key")
    try:
        trust = KeyTrust.from_pem(pem, ed25519_mode=args.ed25519_mode)
    except SluiceError as exc:
        raise SluiceError(f"public key {args.key}: {exc}") from exc
    if not args.rekor_key:
        return trust
    try:
        rekor = read_file(args.rekor_key, "Rekor key")
        return KeyTrust.from_pem(pem, ed25519_mode=args.ed25519_mode, rekor_key_pem=rekor)
    except SluiceError as exc:
        raise SluiceError(f"Rekor key {args.rekor_key}: {exc}") from exc


def run_verify(args: argparse.Namespace) -> int:
    from sluice.supply_chain.bounded import Bounds
    from sluice.supply_chain.constants import MAX_ATTACHMENT_LAYERS, PREDICATE_TYPE
    from sluice.supply_chain.verify import verify_image

    attestation = PREDICATE_TYPE if args.attestation == "sluice" else args.attestation
    trust = _trust(args)
    bounds = Bounds(max_layers=MAX_ATTACHMENT_LAYERS if args.max_signatures is None else args.max_signatures)
    summary = verify_image(
        args.image,
        trust,
        attestation_type=attestation,
        docker_config=args.docker_config,
        allow_insecure_loopback=args.allow_insecure_loopback,
        bounds=bounds,
    )
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    line = f"verified {summary['image']}: {len(summary['signatures'])} signature(s) by {summary['signer']}"
    if summary["attestation"]:
        line += f", {len(summary['attestation']['verified'])} {attestation} attestation(s)"
        if attestation == PREDICATE_TYPE:
            line += " with passing gate evidence"
    print(line)
    return 0
