"""Open the production pull request through GitHub's REST API (`POST /repos/{owner}/{repo}/pulls`).

Building the request is separate from sending it so that tests can check every byte we would send
without a network; sending is plain urllib. The token comes from the environment only
(SLUICE_GIT_TOKEN), never from a flag, so it does not land in shell history or process lists.
"""

from __future__ import annotations

import json
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

from sluice.errors import SluiceError

TOKEN_ENV = "SLUICE_GIT_TOKEN"  # noqa: S105 - the variable's name, not a token
API_ENV = "SLUICE_GITHUB_API_URL"
DEFAULT_API = "https://api.github.com"
API_VERSION = "2022-11-28"
_OWNER_REPO = re.compile(r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$")
_GITHUB_REMOTE = re.compile(r"github\.com[:/]+([A-Za-z0-9-]+)/([A-Za-z0-9._-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class PullRequest:
    owner_repo: str
    head: str
    base: str
    title: str
    body: str
    draft: bool = False


def owner_repo_from_remote(url: str) -> str | None:
    """`owner/name` of a GitHub remote (https or ssh form), or None for other hosts."""
    match = _GITHUB_REMOTE.search(url.strip())
    return f"{match.group(1)}/{match.group(2)}" if match else None


def build_request(pr: PullRequest, token: str, api_url: str | None = None) -> urllib.request.Request:
    if not _OWNER_REPO.match(pr.owner_repo):
        raise SluiceError(f"invalid GitHub repository {pr.owner_repo!r}: expected owner/name")
    if not token:
        raise SluiceError(f"no GitHub token: set {TOKEN_ENV}")
    base = (api_url or os.environ.get(API_ENV) or DEFAULT_API).rstrip("/")
    owner, repo = pr.owner_repo.split("/", 1)
    payload = {
        "title": pr.title,
        "head": pr.head,
        "base": pr.base,
        "body": pr.body,
        "draft": pr.draft,
        "maintainer_can_modify": False,
    }
    if not base.startswith("https://"):
        raise SluiceError(f"GitHub API URL {base!r} must be https")
    return urllib.request.Request(  # noqa: S310 - https enforced above
        f"{base}/repos/{owner}/{repo}/pulls",
        data=json.dumps(payload).encode("utf-8"),
        method="POST",
        headers={
            "Accept": "application/vnd.github+json",
            "Authorization": f"Bearer {token}",
            "X-GitHub-Api-Version": API_VERSION,
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": "sluice-promote",
        },
    )


def send(request: urllib.request.Request, timeout: float = 30.0) -> str:
    """Send the request; the pull request's html_url. An existing PR for the branch is not an error."""
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - https API URL
            return json.loads(resp.read().decode("utf-8"))["html_url"]
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode("utf-8", "replace")
        if exc.code == 422 and "already exists" in detail:
            return "(a pull request for this branch already exists)"
        raise SluiceError(f"GitHub refused the pull request: HTTP {exc.code} {detail[:200]}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise SluiceError(f"cannot reach GitHub to open the pull request: {exc}") from exc
