"""`sluice submit`: compile the training pipeline for a trainer image and run it on a KFP cluster."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    submit = subparsers.add_parser("submit", help=summary)
    submit.add_argument("--host", required=True, help="KFP API URL, e.g. https://kfp.example.com")
    submit.add_argument(
        "--trainer-image", required=True, help="image with Sluice installed, REF@sha256:<digest>"
    )
    submit.add_argument("--tracking-uri", required=True, help="MLflow server URL as seen from the pods")
    submit.add_argument("--data", required=True, help="snapshot path, as mounted in the pods")
    submit.add_argument("--contract", required=True, help="contract path, as mounted in the pods")
    submit.add_argument("--reference", help="reference snapshot path (default: --data)")
    submit.add_argument("--experiment", help="KFP experiment (default: the contract's name)")
    submit.add_argument("--package-out", help="also keep the compiled package at this path")
    submit.add_argument("--dry-run", action="store_true", help="compile and validate, do not submit")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to finish; exit 1 with the reason if it failed or registered nothing",
    )
    submit.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: give up after this long (default: 3600)",
    )
    submit.add_argument(
        "--version-file",
        metavar="PATH",
        help="with --wait: write the model version the run registered here (the number, no newline)",
    )
    submit.set_defaults(func=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from ml.runners.cluster import SubmitRequest, submit

    request = SubmitRequest(
        **{k: getattr(args, k) for k in SubmitRequest.__dataclass_fields__ if hasattr(args, k)}
    )
    return submit(request)
