"""Verbs `sluice promote`, `sluice rollback`, `sluice status`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ml.errors import SluiceError


def _git_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the GitOps repository (default: the current directory)")
    parser.add_argument("--remote", default="origin", help="remote Argo CD watches (default: origin)")
    parser.add_argument("--branch", default="main", help="branch Argo CD watches (default: main)")


def _mlflow_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the home)"
    )
    parser.add_argument("--home", help="Sluice home for local files (default: $SLUICE_HOME or .sluice)")


def _review_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--key", help="cosign public key (default: $SLUICE_COSIGN_PUB); required for production"
    )
    parser.add_argument(
        "--github-repo",
        metavar="OWNER/NAME",
        help="open the production pull request there (token in $SLUICE_GIT_TOKEN)",
    )
    parser.add_argument("--pr-body", type=Path, help="where to write the pull request body (Markdown)")
    parser.add_argument(
        "--allow-insecure-registry",
        action="store_true",
        help="read signatures over plain HTTP from a loopback registry (tests, laptops)",
    )


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "promote",
        help="commit a gated model version into an environment's overlay",
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
    _git_args(p)
    _mlflow_args(p)
    _review_args(p)
    p.set_defaults(func=_promote)

    r = subparsers.add_parser(
        "rollback",
        help="restore the previously promoted version of a model in an environment",
        description=(
            "Restores the overlay file as it was at the previous promotion "
            "(production through a pull request)."
        ),
    )
    r.add_argument("--model", required=True)
    r.add_argument("--env", required=True, choices=("staging", "production"))
    _git_args(r)
    r.add_argument("--home", help="Sluice home for the pull request body (default: $SLUICE_HOME or .sluice)")
    _review_args(r)
    r.set_defaults(func=_rollback)

    s = subparsers.add_parser(
        "status",
        help="versions git holds per model and environment, MLflow aliases, and any mismatch",
        description="Exit 0 when git and MLflow aliases agree, 1 when a mismatch is listed.",
    )
    _git_args(s)
    _mlflow_args(s)
    s.add_argument("--format", choices=("table", "json"), default="table")
    s.add_argument(
        "--argocd", metavar="URL", help="also show Argo CD sync/health (token in $ARGOCD_AUTH_TOKEN)"
    )
    s.add_argument(
        "--argocd-app",
        default="sluice-{env}",
        help="Argo CD Application name per environment (default: sluice-{env})",
    )
    s.set_defaults(func=_status)


def _tracking(args: argparse.Namespace) -> str:
    from ml.paths import tracking_uri

    return tracking_uri(args.home, args.tracking_uri)


def _pr_opener(args: argparse.Namespace, repo: Path, remote: str):
    """A function opening the pull request on GitHub, or None (body file only) without a token."""
    from gates.promotion import github
    from gates.promotion.gitops import remote_url

    token = os.environ.get(github.TOKEN_ENV)
    if not token:
        print(f"note: ${github.TOKEN_ENV} not set: pull request body written, pull request not opened")
        return None
    owner_repo = args.github_repo or github.owner_repo_from_remote(remote_url(repo, remote))
    if not owner_repo:
        raise SluiceError(
            "cannot tell the GitHub repository from the remote URL: pass --github-repo OWNER/NAME"
        )

    def open_pr(head: str, base: str, title: str, body: str) -> str:
        request = github.build_request(github.PullRequest(owner_repo, head, base, title, body), token)
        return github.send(request)

    return open_pr


def _promote(args: argparse.Namespace) -> int:
    from gates.promotion import promote as promotion
    from ml.paths import home

    repo = Path(args.repo)
    if args.finalize:
        from gates.promotion.finalize import finalize

        if args.env not in (None, "production"):
            raise SluiceError("--finalize applies to --env production")
        print(
            finalize(repo, args.model, tracking_uri=_tracking(args), remote=args.remote, branch=args.branch)
        )
        return 0
    if not args.version or not args.env:
        raise SluiceError("promote needs --version and --env (or --finalize)")
    tracking = _tracking(args)
    ui = args.mlflow_ui_url or os.environ.get(promotion.UI_ENV)
    if not ui and tracking.startswith(("http://", "https://")):
        ui = tracking
    opts = promotion.PromoteOptions(
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
    promotion.check_options(opts)  # bad input fails before any network or git work
    verify = promotion.signature_verifier(
        args.env,
        promotion.load_key(args.key),
        allow_insecure_loopback=args.allow_insecure_registry,
        warn=lambda msg: print(msg, file=sys.stderr),
    )
    location = home(args.home)
    download_dir = location.root / "promotions"
    result = promotion.promote(
        repo,
        opts,
        tracking_uri=tracking,
        download_dir=download_dir,
        verify=verify,
        remote=args.remote,
        branch=args.branch,
        pr_body_path=args.pr_body,
        open_pr=_pr_opener(args, repo, args.remote) if args.env == "production" else None,
    )
    print("\n".join(result.lines()))
    return 0


def _rollback(args: argparse.Namespace) -> int:
    from gates.promotion import promote as promotion
    from gates.promotion.rollback import rollback
    from ml.paths import home

    repo = Path(args.repo)
    verify = promotion.signature_verifier(
        args.env,
        promotion.load_key(args.key),
        allow_insecure_loopback=args.allow_insecure_registry,
        warn=lambda msg: print(msg, file=sys.stderr),
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
        open_pr=_pr_opener(args, repo, args.remote) if args.env == "production" else None,
    )
    print("\n".join(result.lines()))
    return 0


def _status(args: argparse.Namespace) -> int:
    from gates.promotion import status

    result = status.collect(
        Path(args.repo),
        tracking_uri=_tracking(args),
        remote=args.remote,
        branch=args.branch,
        argocd_url=args.argocd,
        argocd_app=args.argocd_app,
    )
    print(status.format_json(result) if args.format == "json" else status.format_table(result))
    return 1 if result.mismatches else 0
