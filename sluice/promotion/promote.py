"""`sluice promote`: put a gated model version into an environment's overlay as a git commit.

Flow (every step before the push can fail and leave no trace):
  evidence check in MLflow -> temp clone of the target branch -> write model-version.yaml ->
  `kubectl kustomize` the overlay and the cluster folder -> verify the served image's signature
  -> commit -> push.
staging pushes to the target branch. production never does: it pushes `promote/<model>/v<N>`
and writes (and, with a token, opens) a pull request whose body carries the evidence. How the
push survives races is `sluice.promotion.push`; what the change is, `sluice.promotion.change`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sluice.atomic import write_text
from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.change import Applied, apply_change, message_maker, overlay_text_maker, promotion_branch
from sluice.promotion.evidence_check import (
    DEFAULT_ARTIFACT_ROOT,
    Candidate,
    client_for,
    load_candidate,
    ui_links,
)
from sluice.promotion.gitops import Checkout, clone_branch, repo_top
from sluice.promotion.push import push_review_branch, push_to_target
from sluice.promotion.result import PromotionResult
from sluice.promotion.signatures import Verifier

UI_ENV = "SLUICE_MLFLOW_UI_URL"
ARTIFACT_ROOT_ENV = "SLUICE_ARTIFACT_ROOT"


@dataclass(frozen=True)
class PromoteOptions:
    model: str
    version: str
    env: str
    image: str | None = None
    traffic: int | None = None
    mlflow_ui_url: str | None = None
    artifact_root: str = DEFAULT_ARTIFACT_ROOT


def unchanged_result(opts: PromoteOptions, cand: Candidate, branch: str) -> PromotionResult:
    """The result before anything is applied; `changed` and the commit are filled in on success."""
    return PromotionResult(
        model=opts.model,
        version=opts.version,
        env=opts.env,
        changed=False,
        target_branch=branch,
        evidence_path=cand.evidence_path,
        report_path=cand.report_path,
    )


def check_options(opts: PromoteOptions) -> PromoteOptions:
    overlay.check_model_name(opts.model)
    overlay.check_env(opts.env)
    version = overlay.check_version(opts.version)
    if opts.image is not None:
        overlay.require_pinned(opts.image, "--image")
    if opts.traffic is not None and opts.env != "production":
        raise SluiceError("--traffic applies to production only (staging serves one version)")
    return PromoteOptions(**{**opts.__dict__, "version": version})


def promote(
    repo: Path,
    opts: PromoteOptions,
    *,
    tracking_uri: str,
    download_dir: Path,
    verify: Verifier,
    remote: str = "origin",
    branch: str = "main",
    pr_body_path: Path | None = None,
    open_pr: Callable[[str, str, str, str], str] | None = None,
    finalize_hint: str | None = None,
    warn: Callable[[str], None] = print,
) -> PromotionResult:
    """Promote through the remote: staging straight to `branch`, production as a review branch."""
    opts = check_options(opts)
    repo = repo_top(repo)
    cand = load_candidate(
        client_for(tracking_uri), opts.model, opts.version, download_dir, opts.artifact_root
    )
    result = unchanged_result(opts, cand, branch)
    make = overlay_text_maker(opts, cand)
    message = message_maker(opts, cand)

    def apply(co: Checkout) -> Applied | None:
        return apply_change(co, opts.model, opts.env, make, verify, warn)

    with clone_branch(repo, remote, branch) as co:
        if opts.env == "staging":
            push_to_target(co, branch, apply, message, result)
        else:
            review = promotion_branch(opts.model, review_label(opts))
            push_review_branch(co, branch, review, apply, message, result)
    if not result.changed:
        result.message = (
            f"{opts.env} already holds {opts.model} v{opts.version} on {branch}: nothing to commit"
        )
    elif opts.env == "staging":
        retried = (
            f" (after {result.attempts} attempts: {branch} moved meanwhile)" if result.attempts > 1 else ""
        )
        where = f"{result.commit[:12]} pushed to {branch}{retried}"
        result.message = f"promoted {opts.model} v{opts.version} to staging: {where}"
    else:
        body_path = pr_body_path or download_dir / f"{opts.model}-v{opts.version}-production.md"
        _review(result, opts, cand, body_path, open_pr, finalize_hint)
    return result


def review_label(opts: PromoteOptions) -> str:
    return f"v{opts.version}" + (f"-traffic-{opts.traffic}" if opts.traffic is not None else "")


def _review(
    result: PromotionResult,
    opts: PromoteOptions,
    cand: Candidate,
    body_path: Path,
    open_pr: Callable[[str, str, str, str], str] | None,
    finalize_hint: str | None,
) -> None:
    """The pushed review branch's pull request: its body written (and, with a token, opened)."""
    from sluice.promotion.markdown import pull_request_body

    mlflow_url, evidence_url = ui_links(opts.mlflow_ui_url, cand)
    body = pull_request_body(
        model=opts.model,
        version=opts.version,
        env=opts.env,
        model_uri=cand.model_uri,
        image=result.image or "unknown",
        evidence_sha256=cand.evidence_sha256,
        data_sha256=cand.data_sha256,
        mlflow_url=mlflow_url,
        evidence_url=evidence_url,
        diff=result.diff,
        evidence=cand.evidence,
        finalize_command=finalize_hint or f"sluice promote --finalize --model {opts.model} --env production",
    )
    write_text(body_path, body)
    result.pr_body_path = body_path
    if open_pr is not None:
        result.pr_url = open_pr(result.branch or "", result.target_branch, result.subject, body)
    result.message = (
        f"pushed {result.branch} ({(result.commit or '')[:12]}) for review; {result.target_branch} is "
        "unchanged until the pull request is merged"
    )
