"""`sluice rollback`: put back the version an environment served before the current one.

The history of `apps/<model>/overlays/<env>/model-version.yaml` on the target branch is the
environment's promotion history, so the previous version is found there, not in MLflow (which
may be the thing that is down during an incident). The file is restored byte for byte as it was
when that version was promoted, then rendered and verified like any promotion.

Rolling back twice must not bounce back to the bad version: a rollback commit records
`Sluice-Rolled-Back-From: <version>`, and versions so marked are skipped when looking back.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from sluice.atomic import write_text
from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.change import Applied, apply_change, commit_message, promotion_branch
from sluice.promotion.gitops import Checkout, clone_branch, repo_top
from sluice.promotion.push import push_review_branch, push_to_target
from sluice.promotion.result import PromotionResult
from sluice.promotion.signatures import Verifier

TRAILER = "Sluice-Rolled-Back-From"
_RECORD = "\x1e"


def find_previous(
    co: Checkout, model: str, env: str
) -> tuple[str, overlay.OverlayState, overlay.OverlayState]:
    """(file text to restore, its state, the current state) from the path's history."""
    rel = overlay.relative_overlay_file(model, env)
    text = co.show("HEAD", rel)
    if text is None:
        raise SluiceError(f"{rel} does not exist on the target branch")
    current = overlay.parse(text, rel)
    if not current.version:
        raise SluiceError(f"{model} has never been promoted to {env}: nothing to roll back")
    log = co.git("log", f"--format=%H%n%B{_RECORD}", "--", rel).stdout
    entries = [chunk.strip().split("\n", 1) for chunk in log.split(_RECORD) if chunk.strip()]
    skip = {current.version}
    pattern = re.compile(rf"^{TRAILER}:\s*v?(\d+)\s*$", re.M)
    for entry in entries:  # only commits touching this environment's file are listed
        skip.update(pattern.findall(entry[1] if len(entry) > 1 else ""))
    for entry in entries:
        old = co.show(entry[0], rel)
        if old is None:
            continue
        state = overlay.parse(old, rel)
        if state.version and state.version not in skip:
            return old, state, current
    raise SluiceError(
        f"no earlier promoted version of {model} in {env} to roll back to (current v{current.version})"
    )


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
) -> PromotionResult:
    overlay.check_model_name(model)
    overlay.check_env(env)
    result = PromotionResult(model=model, version="?", env=env, changed=False, target_branch=branch)
    with clone_branch(repo_top(repo), remote, branch) as co:
        text, target, current = find_previous(co, model, env)
        result.version = target.version or "?"

        def make(_current: overlay.OverlayState | None) -> str:
            return text

        def apply(checkout: Checkout) -> Applied | None:
            return apply_change(checkout, model, env, make, verify)

        def message(applied: Applied) -> str:
            return commit_message(
                f"rollback({model}): {env} v{current.version} -> v{target.version}",
                [
                    f"Restores the {env} overlay as it was when v{target.version} was promoted.",
                    f"Model URI: {target.model_uri}",
                    f"Serving image: {applied.rendered.effective_image}",
                ],
                {
                    "Sluice-Model": model,
                    "Sluice-Version": str(target.version),
                    "Sluice-Environment": env,
                    TRAILER: str(current.version),
                },
            )

        if env == "staging":
            push_to_target(co, branch, apply, message, result)
        else:
            label = f"rollback-v{current.version}-to-v{target.version}"
            push_review_branch(co, promotion_branch(model, label), apply, message, result)
    if not result.changed:
        result.message = f"{env} already holds {model} v{target.version}: nothing to roll back"
        return result
    if env == "staging":
        result.message = (
            f"rolled back {model} in staging from v{current.version} to v{target.version} on {branch}"
        )
        return result
    body = "\n".join(
        [
            f"## Roll back `{model}` in production: v{current.version} -> v{target.version}",
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
    result.message = (
        f"pushed {result.branch} ({(result.commit or '')[:12]}) for review; {branch} is unchanged"
    )
    return result
