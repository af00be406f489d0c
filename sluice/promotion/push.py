"""Two ways to land a promotion commit on the remote, both safe against racing promotions.

`push_to_target` (staging): a fast-forward-only push; the loser of a race re-applies its change on
the new tip and retries, a bounded number of times. "Already holds" is an answer about the tip
the push would go onto, so it is checked again on the live remote tip before it is given.

`push_review_branch` (production): the change is committed on the target branch's current tip
and pushed as `promote/<model>/...` with a compare-and-swap. A push never replaces a commit this
process did not create, except a review branch that holds this very change on an older tip of
the target (one commit, this overlay only): that one is rebased. A branch holding a different
change was pushed by another promotion, and is refused, never overwritten.
"""

from __future__ import annotations

from collections.abc import Callable

from sluice.errors import Refused, SluiceError
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
        if applied is None:  # the tip we cloned already holds it; is that still the remote's tip?
            if _moved_to(co, branch):
                continue
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
            tip = _tip(co, branch)
            if tip == parent:  # refused although nothing moved: a hook or branch protection said no
                raise Refused(f"the remote refused the push to {branch}: {exc}") from None
            co.reset_to(tip)
            continue
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {branch} kept moving on the remote")


def push_review_branch(
    co: Checkout,
    target: str,
    review_branch: str,
    apply: Callable[[Checkout], Applied | None],
    message: Callable[[Applied], str],
    result: PromotionResult,
) -> PromotionResult:
    """Commit on the target's current tip and push it as `review_branch` (compare-and-swap)."""
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result.attempts = attempt
        base = _tip(co, target)
        co.reset_to(base)
        applied = apply(co)
        if applied is None:  # the target's live tip already serves it
            result.changed, result.commit = False, None
            return result
        record_applied(result, applied, message)
        existing = co.fetch(review_branch)  # its tip, with its objects, or None
        if existing is not None and _reusable(co, existing, base, review_branch, applied):
            # A previous run (maybe killed before writing the PR body) already pushed exactly this.
            result.commit, result.changed, result.pushed, result.branch = existing, True, True, review_branch
            return result
        result.commit = co.commit([applied.rel], message(applied))
        checkpoint("after-commit")
        checkpoint("before-push")
        try:
            co.push("HEAD", review_branch, expect=existing, lease=True)
        except PushRejected as exc:
            if co.remote_sha(review_branch) == existing:  # nothing moved: refused for another reason
                raise Refused(f"the remote refused the push to {review_branch}: {exc}") from None
            continue  # another promotion pushed it meanwhile: look at what it holds
        checkpoint("after-push")
        result.changed, result.pushed, result.branch = True, True, review_branch
        return result
    raise SluiceError(f"gave up after {MAX_ATTEMPTS} attempts: {review_branch} kept moving on the remote")


def _tip(co: Checkout, branch: str) -> str:
    tip = co.fetch(branch)
    if tip is None:
        raise SluiceError(f"branch {branch} disappeared from the remote during the promotion")
    return tip


def _moved_to(co: Checkout, branch: str) -> bool:
    """Reset to the branch's live tip when it is not what the checkout judged; True if it moved."""
    tip = _tip(co, branch)
    if tip == co.head():
        return False
    co.reset_to(tip)
    return True


def _reusable(co: Checkout, existing: str, base: str, branch: str, applied: Applied) -> bool:
    """True when `branch` holds this change on `base`; False when it holds it on an older tip
    (to be rebased). Refused when it holds anything else: another promotion's work."""
    held = branch_state(co, existing, applied.rel)
    if held is None or held.identity() != applied.state.identity():
        raise Refused(_different(branch, existing, held, applied))
    if co.git("rev-parse", f"{existing}^").stdout.strip() == base:
        return True
    only_ours = co.git("rev-list", "--count", f"{base}..{existing}").stdout.strip() == "1"
    touched = co.git("diff", "--name-only", f"{existing}^", existing).stdout.split()
    if not only_ours or touched != [applied.rel]:
        raise Refused(
            f"branch {branch} ({existing[:12]}) holds this change with other commits on it: "
            "rebase it by hand, or delete it and promote again"
        )
    return False


def _different(branch: str, sha: str, held: overlay.OverlayState | None, applied: Applied) -> str:
    if held is None:
        what = "an unreadable overlay"
    elif held.image != applied.state.image:
        what = f"a different image ({held.image or 'the runtime default'})"
    else:
        what = f"a different change (v{held.version}, evidence {(held.evidence_sha256 or '?')[:12]}…)"
    return (
        f"branch {branch} holds {what} at {sha[:12]}, pushed by another promotion: review that pull "
        "request, or delete the branch to promote this one"
    )


def branch_state(co: Checkout, sha: str, rel: str) -> overlay.OverlayState | None:
    """The overlay a fetched commit holds; None when it is missing or unreadable."""
    text = co.show(sha, rel)
    if text is None:
        return None
    try:
        return overlay.parse(text, rel)
    except SluiceError:
        return None


def branch_holds(co: Checkout, sha: str, branch: str, applied: Applied) -> bool:
    if co.fetch(branch) is None:
        return False
    held = branch_state(co, sha, applied.rel)
    return held is not None and held.identity() == applied.state.identity()


def record_applied(result: PromotionResult, applied: Applied, message: Callable[[Applied], str]) -> None:
    result.subject = message(applied).splitlines()[0]
    result.overlay_path = applied.rel
    result.image = applied.rendered.effective_image
    result.diff = applied.diff
    result.image_lines = applied.rendered.image_lines
    result.model_lines = applied.rendered.model_lines
