"""Options the promotion verbs share (`promote`, `rollback`, `status`), and how they become values."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from sluice.errors import SluiceError


def git_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--repo", default=".", help="the GitOps repository (default: the current directory)")
    parser.add_argument("--remote", default="origin", help="remote Argo CD watches (default: origin)")
    parser.add_argument("--branch", default="main", help="branch Argo CD watches (default: main)")


def mlflow_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the home)"
    )
    parser.add_argument("--home", help="Sluice home for local files (default: $SLUICE_HOME or .sluice)")


def review_options(parser: argparse.ArgumentParser) -> None:
    from sluice.cli.signing_options import keyless_options

    parser.add_argument(
        "--key",
        help="cosign public key (default: $SLUICE_COSIGN_PUB); production needs it or a keyless identity",
    )
    keyless_options(parser)
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


def print_result(result) -> None:
    """What a promotion did; the note about the pull request only once its body was written."""
    from sluice.promotion import github

    print("\n".join(result.lines()))
    if result.pr_body_path is not None and result.pr_url is None:
        print(
            f"note: ${github.TOKEN_ENV} not set: pull request body written to {result.pr_body_path}, "
            "pull request not opened"
        )


def sweep_scratch() -> None:
    """Remove what killed Sluice commands left in the temp root, naming each path (on stderr)."""
    from sluice import scratch

    scratch.sweep(lambda line: print(f"sluice: {line}", file=sys.stderr))


def tracking_uri(args: argparse.Namespace) -> str:
    from sluice import paths

    return paths.tracking_uri(args.home, args.tracking_uri)


def pr_opener(args: argparse.Namespace, repo: Path, remote: str):
    """A function opening the pull request on GitHub, or None (body file only) without a token."""
    from sluice.promotion import github
    from sluice.promotion.gitops import remote_url

    token = os.environ.get(github.TOKEN_ENV)
    if not token:
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


def signature_trust(args: argparse.Namespace):
    """Whom the served image's signature must come from: --key / $SLUICE_COSIGN_PUB, or the identity."""
    from sluice.cli.signing_options import keyless_requested, trust_from_args
    from sluice.promotion.signatures import KEY_ENV, load_key

    key_pem = None if keyless_requested(args) else load_key(args.key)  # $SLUICE_COSIGN_PUB gives way
    return trust_from_args(args, key_pem, args.key or f"${KEY_ENV}")
