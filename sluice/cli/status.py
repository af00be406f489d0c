"""`sluice status`: versions git holds per model and environment, MLflow aliases, mismatches."""

from __future__ import annotations

import argparse
from pathlib import Path

from sluice.cli.promotion_options import git_options, mlflow_options, sweep_scratch, tracking_uri


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    s = subparsers.add_parser(
        "status",
        help=summary,
        description="Exit 0 when git and MLflow aliases agree, 1 when a mismatch is listed.",
    )
    git_options(s)
    mlflow_options(s)
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.add_argument(
        "--argocd", metavar="URL", help="also show Argo CD sync/health (token in $ARGOCD_AUTH_TOKEN)"
    )
    s.add_argument(
        "--argocd-app",
        default="sluice-{env}",
        help="Argo CD Application name per environment (default: sluice-{env})",
    )
    s.add_argument(
        "--trace", action="store_true", help="add the `sluice trace` command of each environment line"
    )
    s.set_defaults(func=run_status)


def run_status(args: argparse.Namespace) -> int:
    from sluice.promotion import status

    sweep_scratch()
    result = status.collect(
        Path(args.repo),
        tracking_uri=tracking_uri(args),
        remote=args.remote,
        branch=args.branch,
        argocd_url=args.argocd,
        argocd_app=args.argocd_app,
    )
    if args.format == "json":
        print(status.format_json(result))
    else:
        print(status.format_table(result, with_trace=args.trace))
    return 1 if result.mismatches else 0
