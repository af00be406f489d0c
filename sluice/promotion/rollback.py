"""`sluice rollback`: put back the version an environment served before the current one.

The history of `apps/<model>/overlays/<env>/model-version.yaml` on the target branch is the
environment's promotion history, so the previous version is found there, not in MLflow (which
may be the thing that is down during an incident). The file is restored byte for byte as it was
when that version was promoted, then rendered and verified like any promotion.

Rolling back twice must not bounce back to the bad version: a rollback commit records
`Sluice-Rolled-Back-From: <version>`, and versions so marked are skipped when looking back.
Revisions of the file that do not parse (hand edits) are skipped too, each named in a warning;
rollback refuses only when no readable earlier version is left. From an unreadable current file
it restores the newest readable promotion.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sluice.atomic import write_text
from sluice.errors import Refused, SluiceError
from sluice.promotion import overlay
from sluice.promotion.change import Applied, apply_change, commit_message, promotion_branch
from sluice.promotion.gitops import Checkout, clone_branch, repo_top
from sluice.promotion.push import push_review_branch, push_to_target
from sluice.promotion.result import PromotionResult
from sluice.promotion.signatures import Verifier

TRAILER = "Sluice-Rolled-Back-From"
_RECORD = "\x1e"


@dataclass(frozen=True)
class Previous:
    """What a rollback restores: the file's text as it was promoted, its state, what it replaces."""

    text: str
    state: overlay.OverlayState
    current: overlay.OverlayState | None  # None: HEAD's file is unreadable

    @property
    def current_label(self) -> str:
        return f"v{self.current.version}" if self.current else "an unreadable overlay"


def find_previous(co: Checkout, model: str, env: str, warn: Callable[[str], None] = print) -> Previous:
    """The newest readable earlier promotion in the file's history, skipping (and naming) revisions
    that do not parse and versions already rolled back from."""
    rel = overlay.relative_overlay_file(model, env)
    text = co.show("HEAD", rel)
    if text is None:
        raise SluiceError(f"{rel} does not exist on the target branch")
    try:
        current: overlay.OverlayState | None = overlay.parse(text, rel)
    except overlay.MalformedOverlay:
        current = None  # named below, as the first unreadable revision
    if current is not None and not current.version:
        raise Refused(f"{model} has never been promoted to {env}: nothing to roll back")
    log = co.git("log", f"--format=%H%n%B{_RECORD}", "--", rel).stdout
    entries = [chunk.strip().split("\n", 1) for chunk in log.split(_RECORD) if chunk.strip()]
    skip = {current.version} if current else set()
    pattern = re.compile(rf"^{TRAILER}:\s*v?(\d+)\s*$", re.M)
    for entry in entries:  # only commits touching this environment's file are listed
        skip.update(pattern.findall(entry[1] if len(entry) > 1 else ""))
    unreadable: dict[str, str] = {}
    for entry in entries:
        old = co.show(entry[0], rel)
        try:
            state = overlay.parse(old, rel) if old is not None else None
        except overlay.MalformedOverlay as exc:
            unreadable[entry[0][:12]] = str(exc)
            continue
        if state is not None and state.version and state.version not in skip:
            for sha, why in unreadable.items():
                warn(f"warning: skipped unreadable revision {sha} of {why}")
            return Previous(old, state, current)
    now = f"v{current.version}" if current else "unreadable"
    named = f"; skipped unreadable revisions {', '.join(unreadable)}" if unreadable else ""
    raise Refused(f"no readable earlier version of {model} in {env} to roll back to (current {now}){named}")


def rollback(
    repo: Path,
    model: str,
    env: str,
    *,
    verify: Verifier,
    remote: str = "origin",
    branch: str = "main",
    pr_body_path: Path | None = None,
    open_pr: Callable[[str, str, str, str], str] | None = None,
    warn: Callable[[str], None] = print,
) -> PromotionResult:
    overlay.check_model_name(model)
    overlay.check_env(env)
    result = PromotionResult(model=model, version="?", env=env, changed=False, target_branch=branch)
    with clone_branch(repo_top(repo), remote, branch) as co:
        previous = find_previous(co, model, env, warn)
        result.version = previous.state.version or "?"

        def apply(checkout: Checkout) -> Applied | None:
            return apply_change(checkout, model, env, lambda _current: previous.text, verify, warn)

        message = _message_maker(model, env, previous)
        if env == "staging":
            push_to_target(co, branch, apply, message, result)
        else:
            was = f"v{previous.current.version}" if previous.current else "unreadable"
            label = f"rollback-{was}-to-v{previous.state.version}"
            push_review_branch(co, branch, promotion_branch(model, label), apply, message, result)
    _describe(result, model, env, previous, pr_body_path, open_pr)
    return result


def _message_maker(model: str, env: str, previous: Previous) -> Callable[[Applied], str]:
    target, was = previous.state, (previous.current.version if previous.current else "unreadable")

    trailers = {"Sluice-Model": model, "Sluice-Version": str(target.version), "Sluice-Environment": env}
    if previous.current:
        trailers[TRAILER] = str(was)

    def message(applied: Applied) -> str:
        return commit_message(
            f"rollback({model}): {env} {previous.current_label} -> v{target.version}",
            [
                f"Restores the {env} overlay as it was when v{target.version} was promoted.",
                f"Model URI: {target.model_uri}",
                f"Serving image: {applied.rendered.effective_image}",
            ],
            trailers,
        )

    return message


def _describe(
    result: PromotionResult,
    model: str,
    env: str,
    previous: Previous,
    pr_body_path: Path | None,
    open_pr: Callable[[str, str, str, str], str] | None,
) -> None:
    """The result's message; for production, the pull request body (written, maybe opened)."""
    target, branch = previous.state, result.target_branch
    if not result.changed:
        result.message = f"{env} already holds {model} v{target.version}: nothing to roll back"
        return
    if env == "staging":
        result.message = (
            f"rolled back {model} in staging from {previous.current_label} to v{target.version} on {branch}"
        )
        return
    body = "\n".join(
        [
            f"## Roll back `{model}` in production: {previous.current_label} -> v{target.version}",
            "",
            f"Restores `{overlay.relative_overlay_file(model, env)}` as it was when v{target.version} was "
            "promoted (its evidence was reviewed then).",
            "",
            "```diff",
            result.diff.rstrip("\n"),
            "```",
            "",
            "After merging and syncing, record the champion:",
            "",
            "```bash",
            f"sluice promote --finalize --model {model} --env production",
            "```",
            "",
        ]
    )
    path = pr_body_path or Path(f"{model}-rollback-v{target.version}-production.md")
    write_text(path, body)
    result.pr_body_path = path
    if open_pr is not None:
        result.pr_url = open_pr(result.branch or "", branch, result.subject, body)
    pushed = f"{result.branch} ({(result.commit or '')[:12]})"
    result.message = f"pushed {pushed} for review; {branch} is unchanged"
