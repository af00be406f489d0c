"""The laptop loop's last step: a passing `sluice run` promotes its version into staging.

The promotion is a commit on local branch `promote/<model>/staging-v<N>` of the repository the
run happens in, built by `sluice.promotion.promote_to_local_branch` in a temporary clone: the
working tree, the index and the current branch are never touched. Review it, merge it, push it;
Argo CD does the rest.

Where promotion cannot apply (no git repository, no commit yet, no `apps/<model>` staging overlay
at HEAD, no kubectl/kustomize to render with) the run says so in one line and still succeeds: the
model version was registered, which is what the run was for. A promotion that applies but fails
(the overlay does not render, the remote moved) is an error.

An unchanged re-run answers from the run record without importing MLflow; its promotion check
stays cheap too: when the record says which branch and commit hold this version in this
repository and git agrees, that is the answer (the same one `promote_to_local_branch` would give).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from sluice import paths
from sluice.errors import Refused, SluiceError
from sluice.git import git, work_tree
from sluice.promotion.change import Applied, apply_change, message_maker, overlay_text_maker, promotion_branch
from sluice.promotion.evidence_check import client_for, load_candidate
from sluice.promotion.gitops import Checkout, PushRejected, clone_commit, repo_top
from sluice.promotion.hooks import checkpoint
from sluice.promotion.promote import UI_ENV, PromoteOptions, check_options, unchanged_result
from sluice.promotion.push import branch_holds, record_applied
from sluice.promotion.result import PromotionResult
from sluice.promotion.signatures import key_trust, load_key, signature_verifier

ENV = "staging"


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return git(repo, *args, check=False)


def why_not_applicable(repo: Path | None, model: str, where: Path) -> str | None:
    """One line saying why this repository cannot take the promotion, or None when it can."""
    if repo is None:
        return f"{where} is not inside a git repository (run from your clone, or pass --repo PATH)"
    if _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").returncode != 0:
        return f"repository {repo} has no commit yet"
    kustomization = f"apps/{model}/overlays/{ENV}/kustomization.yaml"
    if _git(repo, "cat-file", "-e", f"HEAD:{kustomization}").returncode != 0:
        return f"repository {repo} has no {kustomization} at HEAD (the promotion is built on HEAD)"
    if not (shutil.which("kubectl") or shutil.which("kustomize")):
        return "neither kubectl nor kustomize is installed (the overlay must render before it is committed)"
    return None


def resolve_repo(repo: str | None, cwd: Path) -> Path | None:
    if repo is None:
        return work_tree(cwd)
    top = _git(Path(repo), "rev-parse", "--show-toplevel")
    return Path(top.stdout.strip()) if top.returncode == 0 else None


def recorded_branch_holds(repo: Path, recorded: dict[str, Any] | None) -> bool:
    """The record's branch still points at the commit the record saw, in this very repository."""
    if not recorded or not recorded.get("branch") or not recorded.get("commit"):
        return False
    if Path(recorded.get("repo", "")) != repo:
        return False
    tip = _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{recorded['branch']}^{{commit}}")
    return tip.returncode == 0 and tip.stdout.strip() == recorded["commit"]


def promote_after_run(
    record: dict[str, Any],
    *,
    repo_option: str | None,
    tracking_uri: str,
    home_root: Path,
    out: TextIO,
    cwd: Path | None = None,
) -> dict[str, Any] | None:
    """Promote the run's version to a local staging branch; returns what to keep in the record."""
    model, version = record["model_name"], str(record["version"])
    cwd = cwd or Path.cwd()
    repo = resolve_repo(repo_option, cwd)
    reason = why_not_applicable(repo, model, Path(repo_option).resolve() if repo_option else cwd)
    if reason is not None:
        out.write(f"  not promoted: {reason}; {model} version {version} stays registered as challenger\n")
        return None
    assert repo is not None
    recorded = record.get("promotion")
    if recorded_branch_holds(repo, recorded):
        out.write(
            f"\n  promoted: branch {recorded['branch']} already holds {model} v{version} "
            f"({recorded['commit'][:12]}); no new commit, working tree and current branch untouched\n"
        )
        return recorded
    served = tracking_uri if tracking_uri.startswith(("http://", "https://")) else None
    ui_url = os.environ.get(UI_ENV) or served
    try:
        result = promote_to_local_branch(
            repo,
            model,
            version,
            tracking_uri=tracking_uri,
            home=home_root,
            image=None,
            env=ENV,
            mlflow_ui_url=ui_url,
            key_pem=load_key(None),
            warn=lambda message: out.write(f"  {message}\n"),
        )
    except SluiceError as exc:
        raise SluiceError(
            f"{model} version {version} is registered, but promoting it to {ENV} failed: {exc}"
        ) from exc
    lines = [line for block in result.lines() for line in block.splitlines() or [""]]
    out.write("\n" + "\n".join(f"  {line}" if line else "" for line in lines) + "\n")
    if not result.branch or not result.commit:
        return None  # HEAD's overlay already holds this version: nothing to point at
    return {"repo": str(repo), "branch": result.branch, "commit": result.commit, "env": ENV}


def promote_to_local_branch(
    repo: Path,
    model: str,
    version: str | int,
    *,
    tracking_uri: str | None = None,
    home: str | Path | None = None,
    image: str | None = None,
    env: str = ENV,
    mlflow_ui_url: str | None = None,
    key_pem: bytes | None = None,
    warn: Callable[[str], None] = print,
) -> PromotionResult:
    """Commit the promotion onto local branch `promote/<model>/<env>-v<N>` of `repo`.

    Built on the repository's HEAD commit in a temporary clone and pushed into `repo` as a new
    branch: the working tree, the index and the current branch stay exactly as they were. The
    model URI may be local (a laptop MLflow); cluster promotions refuse such URIs.
    """
    opts = check_options(
        PromoteOptions(model=model, version=str(version), env=env, image=image, mlflow_ui_url=mlflow_ui_url)
    )
    repo = repo_top(Path(repo))
    head = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}").stdout.strip()
    if not head:
        raise SluiceError(f"repository {repo} has no commit yet: commit once before promoting")
    uri = paths.tracking_uri(home, tracking_uri)
    evidence_dir = paths.home(home).evidence
    cand = load_candidate(client_for(uri), opts.model, opts.version, evidence_dir, allow_local_uri=True)
    branch = promotion_branch(opts.model, f"{opts.env}-v{opts.version}")
    result = unchanged_result(opts, cand, branch)
    verify = signature_verifier(opts.env, key_trust(key_pem), warn=warn)
    make = overlay_text_maker(opts, cand)
    message = message_maker(opts, cand)
    with clone_commit(repo, head) as co:
        applied = apply_change(co, opts.model, opts.env, make, verify, warn)
        if applied is None:
            held = f"{opts.model} v{opts.version}"
            result.message = f"HEAD's {opts.env} overlay already holds {held}: no commit"
            return result
        record_applied(result, applied, message)
        _commit_to_branch(co, branch, applied, message, result)
    return result


def _commit_to_branch(
    co: Checkout, branch: str, applied: Applied, message: Callable[[Applied], str], result: PromotionResult
) -> None:
    """Create `branch` in the user's repository (compare-and-swap), or reuse it if it holds this
    change; a branch holding anything else is someone's work, never overwritten."""
    what = f"{result.model} v{result.version}"
    existing = co.remote_sha(branch)
    if existing is not None:
        if not branch_holds(co, existing, branch, applied):
            raise Refused(
                f"branch {branch} ({existing[:12]}) holds a different change than {what} with this image: "
                f"delete it (git branch -D {branch}) to promote again"
            )
        result.commit, result.changed, result.branch = existing, True, branch
        result.message = f"branch {branch} already holds {what} ({existing[:12]})"
        return
    result.commit = co.commit([applied.rel], message(applied))
    checkpoint("after-commit")
    try:
        co.push("HEAD", branch, expect=existing, lease=True)
    except PushRejected as exc:
        raise SluiceError(f"branch {branch} changed while promoting; run again") from exc
    result.changed, result.pushed, result.branch = True, False, branch
    result.message = (
        f"committed {what} to local branch {branch} ({result.commit[:12]}); "
        "working tree and current branch untouched"
    )
