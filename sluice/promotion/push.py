"""Two ways to land a promotion commit on the remote, both safe against racing promotions.

`push_to_target` (staging): a fast-forward-only push; the loser of a race re-applies its change on
the new tip and retries, a bounded number of times. `push_review_branch` (production): a
compare-and-swap on `promote/<model>/...`; the branch is reused when it already holds this change.
"""

from __future__ import annotations

from collections.abc import Callable

from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.change import Applied
from sluice.promotion.gitops import Checkout, PushRejected
from sluice.promotion.hooks import checkpoint
from sluice.promotion.result import PromotionResult

MAX_ATTEMPTS = 5


def push_to_target(
    co: Checkout,
    branch: str,
    apply: Callable[[Checkout], Applied | None],
    message: Callable[[Applied], str],
    result: PromotionResult,
) -> PromotionResult:
    """Commit on the target branch and push; on a lost race re-apply on the new tip and retry."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        applied = apply(co)
        if applied is None:  # also when a racing promotion already put this very version there
            result.changed, result.commit = False, None
            return result
        result.commit = co.commit([applied.rel], message(applied))
        record_applied(result, applied, message)
        checkpoint("after-commit")
        checkpoint("before-push")
        parent = co.git("rev-parse", "HEAD^").stdout.strip()
        try:
            co.push("HEAD", branch)
        except PushRejected as exc:
            tip = co.fetch(branch)
            if tip is None:
                raise SluiceError(
                    f"branch {branch} disappeared from the remote during the promotion"
                ) from None
            if tip == parent:  # refused although nothing moved: a hook or branch protection said no
                raise SluiceError(f"the remote refused the push to {branch}: {exc}") from None
            co.reset_to(tip)
            continue
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {branch} kept moving on the remote")


def push_review_branch(
    co: Checkout,
    review_branch: str,
    apply: Callable[[Checkout], Applied | None],
    message: Callable[[Applied], str],
    result: PromotionResult,
) -> PromotionResult:
    """Commit on top of the target tip and push it as `review_branch` (compare-and-swap)."""
    base = co.head()
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        co.reset_to(base)
        applied = apply(co)
        if applied is None:
            result.changed, result.commit = False, None
            return result
        record_applied(result, applied, message)
        existing = co.remote_sha(review_branch)
        if existing is not None and branch_holds(co, existing, review_branch, applied):
            # A previous run (maybe killed before writing the PR body) already pushed it.
            result.commit, result.changed, result.pushed, result.branch = existing, True, True, review_branch
            return result
        result.commit = co.commit([applied.rel], message(applied))
        checkpoint("after-commit")
        checkpoint("before-push")
        try:
            co.push("HEAD", review_branch, expect=existing, lease=True)
        except PushRejected as exc:
            if co.remote_sha(review_branch) == existing:  # nothing moved: refused for another reason
                raise SluiceError(f"the remote refused the push to {review_branch}: {exc}") from None
            continue
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, review_branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {review_branch} kept moving on the remote")


def branch_holds(co: Checkout, sha: str, branch: str, applied: Applied) -> bool:
    if co.fetch(branch) is None:
        return False
    text = co.show(sha, applied.rel)
    if text is None:
        return False
    return overlay.parse(text, applied.rel).identity() == applied.state.identity()


def record_applied(result: PromotionResult, applied: Applied, message: Callable[[Applied], str]) -> None:
    result.subject = message(applied).splitlines()[0]
    result.overlay_path = applied.rel
    result.image = applied.rendered.effective_image
    result.diff = applied.diff
    result.image_lines = applied.rendered.image_lines
    result.model_lines = applied.rendered.model_lines
