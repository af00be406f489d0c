"""`sluice promote`: a gated model version into an environment's overlay, as a git commit.

staging: commit and push. production: push `promote/<model>/v<N>` and write (with $SLUICE_GIT_TOKEN,
open) a pull request. `--finalize`, after that pull request is merged, moves MLflow's champion alias.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sluice.cli.promotion_options import (
    git_options,
    mlflow_options,
    pr_opener,
    print_result,
    review_options,
    signature_trust,
    sweep_scratch,
    tracking_uri,
)
from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser(
        "promote",
        help=summary,
        description=(
            "Write the model version into apps/<model>/overlays/<env>/model-version.yaml on the "
            "remote's target branch. staging: commit and push. production: push promote/<model>/v<N> "
            "and write (with $SLUICE_GIT_TOKEN, open) a pull request. --finalize, after the production "
            "pull request is merged, moves MLflow's champion alias to what production holds."
        ),
    )
    p.add_argument("--model", required=True, help="registered model name (= apps/<model>/)")
    p.add_argument("--version", help="model version number")
    p.add_argument("--env", choices=("staging", "production"), default=None)
    p.add_argument(
        "--image", help="serving image to run, REF@sha256:<64 hex> (default: keep the current one)"
    )
    p.add_argument(
        "--traffic",
        type=int,
        metavar="PERCENT",
        help="production only: canary traffic share for this version (e.g. 100 to complete a rollout)",
    )
    p.add_argument(
        "--mlflow-ui-url",
        help="MLflow UI base URL for the Argo CD links (default: $SLUICE_MLFLOW_UI_URL "
        "or the tracking URI when it is http(s))",
    )
    p.add_argument(
        "--artifact-root",
        help="object-store root behind mlflow-artifacts:/ URIs "
        "(default: $SLUICE_ARTIFACT_ROOT or s3://mlflow-artifacts)",
    )
    p.add_argument(
        "--finalize",
        action="store_true",
        help="after merging: set champion to the version production holds on the target branch",
    )
    git_options(p)
    mlflow_options(p)
    review_options(p)
    p.set_defaults(func=run_promote)


def run_promote(args: argparse.Namespace) -> int:
    if args.finalize:
        return run_finalize(args)
    from sluice.paths import home
    from sluice.promotion import promote as promotion
    from sluice.promotion import signatures

    if not args.version or not args.env:
        raise SluiceError("promote needs --version and --env (or --finalize)")
    tracking = tracking_uri(args)
    opts = promotion.check_options(options(args, tracking))  # bad input fails before network or git
    sweep_scratch()
    warn = lambda msg: print(msg, file=sys.stderr)  # noqa: E731 - one line, used twice
    verify = signatures.signature_verifier(
        args.env, signature_trust(args), allow_insecure_loopback=args.allow_insecure_registry, warn=warn
    )
    repo = Path(args.repo)
    result = promotion.promote(
        repo,
        opts,
        tracking_uri=tracking,
        download_dir=home(args.home).root / "promotions",
        verify=verify,
        remote=args.remote,
        branch=args.branch,
        pr_body_path=args.pr_body,
        open_pr=pr_opener(args, repo, args.remote) if args.env == "production" else None,
        warn=warn,
    )
    print_result(result)
    return 0


def options(args: argparse.Namespace, tracking: str):
    """The typed promotion request; the MLflow UI defaults to an http(s) tracking server."""
    from sluice.promotion import promote as promotion

    ui = args.mlflow_ui_url or os.environ.get(promotion.UI_ENV)
    if not ui and tracking.startswith(("http://", "https://")):
        ui = tracking
    return promotion.PromoteOptions(
        model=args.model,
        version=args.version,
        env=args.env,
        image=args.image,
        traffic=args.traffic,
        mlflow_ui_url=ui,
        artifact_root=args.artifact_root
        or os.environ.get(promotion.ARTIFACT_ROOT_ENV)
        or promotion.DEFAULT_ARTIFACT_ROOT,
    )


def run_finalize(args: argparse.Namespace) -> int:
    from sluice.promotion.finalize import finalize

    if args.env not in (None, "production"):
        raise SluiceError("--finalize applies to --env production")
    repo, tracking = Path(args.repo), tracking_uri(args)
    print(finalize(repo, args.model, tracking_uri=tracking, remote=args.remote, branch=args.branch))
    return 0
