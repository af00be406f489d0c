"""`sluice rollback`: restore the previously promoted version of a model in an environment."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluice.cli.promotion_options import (
    git_options,
    pr_opener,
    print_result,
    review_options,
    signature_trust,
    sweep_scratch,
)


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    r = subparsers.add_parser(
        "rollback",
        help=summary,
        description=(
            "Restores the overlay file as it was at the previous promotion "
            "(production through a pull request)."
        ),
    )
    r.add_argument("--model", required=True)
    r.add_argument("--env", required=True, choices=("staging", "production"))
    git_options(r)
    r.add_argument("--home", help="Sluice home for the pull request body (default: $SLUICE_HOME or .sluice)")
    review_options(r)
    r.set_defaults(func=run_rollback)


def run_rollback(args: argparse.Namespace) -> int:
    from sluice.paths import home
    from sluice.promotion import signatures
    from sluice.promotion.rollback import rollback

    repo = Path(args.repo)
    sweep_scratch()
    warn = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - one line, used twice
    verify = signatures.signature_verifier(
        args.env, signature_trust(args), allow_insecure_loopback=args.allow_insecure_registry, warn=warn
    )
    body = args.pr_body or home(args.home).root / "promotions" / f"{args.model}-rollback-production.md"
    result = rollback(
        repo,
        args.model,
        args.env,
        verify=verify,
        remote=args.remote,
        branch=args.branch,
        pr_body_path=body,
        open_pr=pr_opener(args, repo, args.remote) if args.env == "production" else None,
        warn=warn,
    )
    print_result(result)
    return 0
