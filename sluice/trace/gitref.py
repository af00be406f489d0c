"""The git side of a trace: the overlay at a ref, who last changed it and how, the promotion history.

Git is read, never written: a local ref is read in a `--shared` clone of the repository, a remote
branch in a clone of the remote (the same throw-away checkouts promotion uses), so tracing works on
the laptop loop's local `promote/...` branch and on the branch Argo CD watches alike.

A promotion commit carries `Sluice-*` trailers (sluice.promotion.change); a later commit to the
same file without them is a hand edit, and the overlay is compared with what Sluice last wrote.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sluice.errors import SluiceError
from sluice.git import git
from sluice.promotion import overlay
from sluice.promotion.gitops import Checkout, clone_branch, clone_commit, repo_top
from sluice.trace.hops import Hop, fail, ok

TRAILER_MODEL = "Sluice-Model"
TRAILER_VERSION = "Sluice-Version"
TRAILER_ENV = "Sluice-Environment"
HISTORY_LIMIT = 20
_SEP, _END = "\x1f", "\x1e"
_LOG_FORMAT = _SEP.join(("%H", "%an <%ae>", "%aI", "%s", "%(trailers:only=true,unfold=true)")) + _END
_PR = re.compile(r"#(\d+)")


@dataclass
class Commit:
    sha: str
    author: str
    date: str
    subject: str
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def by_sluice(self) -> bool:
        return TRAILER_VERSION in self.trailers


def _trailers(text: str) -> dict[str, str]:
    found = {}
    for line in text.strip().splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found[key.strip()] = value.strip()
    return found


def log(co: Checkout, *paths: str, rev: str = "HEAD", limit: int | None = None) -> list[Commit]:
    """Commits of `rev` touching `paths`, newest first, with their trailers."""
    args = ["log", f"--format={_LOG_FORMAT}", *([f"-{limit}"] if limit else []), rev, "--", *paths]
    out = co.git(*args).stdout
    commits = []
    for chunk in out.split(_END):
        parts = chunk.strip("\n").split(_SEP)
        if len(parts) == 5:
            commits.append(Commit(parts[0], parts[1], parts[2], parts[3], _trailers(parts[4])))
    return commits


@contextlib.contextmanager
def open_ref(repo: Path, remote: str, ref: str | None, branch: str) -> Iterator[tuple[Checkout, str]]:
    """A checkout at `ref` (a local branch or commit, else a branch on `remote`) and how to name it.

    Without `ref`: `branch` on `remote` when the repository has that remote, else its HEAD.
    """
    top = repo_top(repo)
    has_remote = git(top, "remote", "get-url", remote, check=False).returncode == 0
    local = ref or ("HEAD" if not has_remote else None)
    if local is not None:
        sha = git(top, "rev-parse", "--verify", "--quiet", f"{local}^{{commit}}", check=False).stdout.strip()
        if sha:
            with clone_commit(top, sha) as co:
                yield co, local
            return
        if not has_remote:
            raise SluiceError(f"{local!r} is neither a branch nor a commit of {top}, which has no {remote}")
    name = ref or branch
    with clone_branch(top, remote, name) as co:
        yield co, f"{remote}/{name}"


def merged_by(co: Checkout, sha: str) -> Commit | None:
    """The first merge that brought `sha` into HEAD (the pull request), or None when pushed directly."""
    out = co.git("rev-list", "--merges", "--ancestry-path", "--reverse", f"{sha}..HEAD").stdout.split()
    if not out:
        return None
    found = log(co, rev=out[0], limit=1)
    return found[0] if found else None


def _describe_commit(c: Commit) -> dict[str, object]:
    return {"sha": c.sha, "author": c.author, "date": c.date, "subject": c.subject, "trailers": c.trailers}


def _changed_by_hand(co: Checkout, rel: str, state: overlay.OverlayState, last_sluice: Commit) -> list[str]:
    """What differs between the overlay now and as Sluice last wrote it (model, version, URI, image...)."""
    text = co.show(last_sluice.sha, rel)
    before = overlay.parse(text, f"{rel}@{last_sluice.sha[:12]}") if text else None
    if before is None:
        return ["the file Sluice wrote is gone"]
    fields = ("model", "version", "model_uri", "image", "evidence_sha256", "data_sha256", "traffic")
    return [
        f"{name} {getattr(before, name)} -> {getattr(state, name)}"
        for name in fields
        if getattr(before, name) != getattr(state, name)
    ]


def _authorship_problem(
    co: Checkout, rel: str, text: str, state: overlay.OverlayState, model: str, commits: list[Commit]
) -> str | None:
    """Why the overlay is not what Sluice wrote (no annotations, no promotion commit, a hand edit)."""
    if state.version is None and overlay.ANN_VERSION in text:
        return None  # the unpromoted stub: nothing was promoted, nothing to attribute
    if state.model is None or state.version is None:
        return f"{rel} has no Sluice annotations ({overlay.ANN_MODEL}): hand-written?"
    if state.model != model:
        return f"{rel} is annotated for model {state.model!r}, not {model!r}"
    last, last_sluice = commits[0], next((c for c in commits if c.by_sluice), None)
    if last_sluice is None:
        return f"{rel} was never written by sluice promote/rollback"
    if last_sluice.trailers.get(TRAILER_VERSION) != state.version:
        return (
            f"{rel} holds v{state.version} but its promotion commit {last_sluice.sha[:12]} says "
            f"v{last_sluice.trailers.get(TRAILER_VERSION)}"
        )
    changes = _changed_by_hand(co, rel, state, last_sluice) if last.sha != last_sluice.sha else []
    if changes:
        return (
            f"edited by hand in {last.sha[:12]} ({last.author}) after sluice wrote it in "
            f"{last_sluice.sha[:12]}: " + "; ".join(changes)
        )
    return None


def overlay_hop(co: Checkout, model: str, env: str, where: str) -> tuple[Hop, overlay.OverlayState | None]:
    """Hop 1: the overlay at the ref, the commit that last changed it, and whether Sluice wrote it."""
    rel = overlay.relative_overlay_file(model, env)
    text = co.show("HEAD", rel)
    if text is None:
        return fail("overlay", f"no {rel} at {where}: unknown model or environment", file=rel), None
    try:
        state = overlay.parse(text, rel)
    except SluiceError as exc:
        return fail("overlay", str(exc), file=rel), None
    commits = log(co, rel)
    last = commits[0]
    facts: dict[str, object] = {
        "file": rel,
        "version": state.version,
        "storage_uri": state.model_uri,
        "image": state.image,
        "evidence_sha256": state.evidence_sha256,
        "data_sha256": state.data_sha256,
        "last_change": _describe_commit(last),
    }
    merge = merged_by(co, last.sha)
    if merge is not None:
        pr = _PR.search(merge.subject)
        facts["merged_by"] = {**_describe_commit(merge), "pull_request": pr.group(1) if pr else None}
    problem = _authorship_problem(co, rel, text, state, model, commits)
    if problem is not None:
        return fail("overlay", problem, **facts), state
    if state.version is None:
        return fail("overlay", f"{env} holds no version of {model} at {where} (unpromoted)", **facts), state
    last_sluice = next(c for c in commits if c.by_sluice)
    how = f"merged in {merge.sha[:12]}" if merge else "committed directly"
    return ok(
        "overlay",
        f"v{state.version} at {where}, written by sluice in {last_sluice.sha[:12]} "
        f"({last_sluice.date[:10]}, {last_sluice.author}), {how}",
        **facts,
    ), state


def promotion_history(co: Checkout, model: str) -> list[dict[str, str]]:
    """The model's promotions and rollbacks, newest first: what the aliases were meant to follow."""
    paths = [overlay.relative_overlay_file(model, env) for env in overlay.ENVIRONMENTS]
    found = []
    for c in log(co, *paths, limit=HISTORY_LIMIT * 4):
        if c.by_sluice and c.trailers.get(TRAILER_MODEL, model) == model:
            found.append(
                {
                    "date": c.date,
                    "env": c.trailers.get(TRAILER_ENV, "?"),
                    "version": c.trailers[TRAILER_VERSION],
                    "commit": c.sha,
                    "subject": c.subject,
                }
            )
    return found[:HISTORY_LIMIT]


def overlays_at(co: Checkout) -> dict[str, dict[str, overlay.OverlayState]]:
    """Every readable overlay file at the checkout: model -> environment -> state (`sluice status`'s
    reader; a file that does not parse is left out here and named by the overlay hop itself)."""
    from sluice.promotion.status import read_overlays

    overlays, _unreadable = read_overlays(co)
    return overlays


def holding(sha: str, *repos: Path) -> Path | None:
    """The first of `repos` that has commit `sha`, or None."""
    for repo in repos:
        if git(repo, "cat-file", "-e", f"{sha}^{{commit}}", check=False).returncode == 0:
            return repo
    return None
