"""Git mechanics of a promotion, all inside a throw-away clone.

The user's repository is only ever read (as the clone's object source) or pushed into as a
remote: its working tree, index and current branch are never touched, so a promotion can run
while someone edits files, and a promotion killed at any instant leaves nothing half-done
there. On the remote the only write is `git push`, which moves a ref atomically. The clone lives
in Sluice's temp root (`sluice.scratch`): removed on every exit, swept by the next command if
the promotion was killed.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from sluice import scratch
from sluice.errors import SluiceError
from sluice.git import git, last_line
from sluice.promotion.hooks import checkpoint

SCRATCH_KIND = "promote"


class PushRejected(Exception):
    """The remote refused a ref update: it moved (non-fast-forward, stale lease) or said no
    (a hook, branch protection); the message carries the remote's own words."""


def repo_top(path: Path) -> Path:
    out = git(path, "rev-parse", "--show-toplevel", check=False)
    if out.returncode != 0:
        raise SluiceError(f"{path} is not inside a git repository (use --repo PATH)")
    return Path(out.stdout.strip())


def remote_url(repo: Path, remote: str) -> str:
    out = git(repo, "remote", "get-url", remote, check=False)
    if out.returncode != 0:
        raise SluiceError(f"repository {repo} has no remote named {remote!r} (use --remote)")
    url = out.stdout.strip()
    # A remote given as a relative path is relative to the repository, not to our temp dir.
    if "://" not in url and ":" not in url.split("/")[0] and not os.path.isabs(url):
        url = str((repo / url).resolve())
    return url


def identity_args(repo: Path) -> list[str]:
    """Carry the user's identity into the temp clone (repo-local config is not cloned)."""
    args: list[str] = []
    for key in ("user.name", "user.email"):
        out = git(repo, "config", "--get", key, check=False)
        if out.returncode == 0 and out.stdout.strip():
            args += ["-c", f"{key}={out.stdout.strip()}"]
    return args


@dataclass
class Checkout:
    """A temporary clone positioned on the commit a promotion builds on."""

    path: Path
    identity: list[str]

    def git(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return git(self.path, *self.identity, *args, check=check)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def last_change(self, path: str) -> str:
        """The commit that last touched `path` at HEAD (what broke it, when it is broken)."""
        return self.git("log", "-1", "--format=%H", "HEAD", "--", path).stdout.strip() or self.head()

    def show(self, rev: str, path: str) -> str | None:
        out = self.git("show", f"{rev}:{path}", check=False)
        return out.stdout if out.returncode == 0 else None

    def diff(self, path: str) -> str:
        return self.git("diff", "--no-color", "HEAD", "--", path).stdout

    def commit(self, paths: list[str], message: str) -> str:
        self.git("add", "--", *paths)
        self.git("commit", "--quiet", "--no-verify", "-m", message)
        return self.head()

    def reset_to(self, rev: str) -> None:
        self.git("reset", "--quiet", "--hard", rev)

    def fetch(self, branch: str) -> str | None:
        """Fetch the remote branch; its tip, or None when the branch does not exist."""
        out = self.git("fetch", "--quiet", "--no-tags", "origin", f"refs/heads/{branch}", check=False)
        if out.returncode != 0:
            if "couldn't find remote ref" in out.stderr:
                return None
            raise SluiceError(f"git fetch of {branch} failed: {last_line(out)}")
        return self.git("rev-parse", "FETCH_HEAD").stdout.strip()

    def remote_sha(self, branch: str) -> str | None:
        out = self.git("ls-remote", "--heads", "origin", f"refs/heads/{branch}")
        line = out.stdout.strip().splitlines()
        return line[0].split()[0] if line else None

    def push(self, source: str, branch: str, expect: str | None = None, lease: bool = False) -> None:
        """Push `source` to refs/heads/`branch`; PushRejected when the remote moved under us.

        With `lease`, the update succeeds only if the branch still points at `expect` (or does
        not exist when `expect` is None): a compare-and-swap on the remote ref.
        """
        args = ["push", "--porcelain", "--quiet"]
        if lease:
            args.append(f"--force-with-lease=refs/heads/{branch}:{expect or ''}")
        args += ["origin", f"{source}:refs/heads/{branch}"]
        out = self.git(*args, check=False)
        if out.returncode == 0:
            return
        # --porcelain: one line per ref, flag "!" when the remote refused that ref update; what a
        # hook printed arrives on stderr as "remote: ..." lines.
        refused = [line.split("\t")[-1] for line in out.stdout.splitlines() if line.startswith("!")]
        said = [line[7:].strip() for line in out.stderr.splitlines() if line.startswith("remote:")]
        said = [line for line in said if line]
        if refused:
            raise PushRejected("; ".join(refused) + (f": {' / '.join(said)}" if said else ""))
        raise SluiceError(f"git push to {branch} failed: {last_line(out)}")


@contextlib.contextmanager
def _tempdir() -> Iterator[Path]:
    with scratch.directory(SCRATCH_KIND) as base:
        yield base


@contextlib.contextmanager
def clone_branch(repo: Path, remote: str, branch: str) -> Iterator[Checkout]:
    """A clone of `remote`'s `branch`, borrowing objects from `repo` so it costs little."""
    url = remote_url(repo, remote)
    with _tempdir() as base:
        work = base / "work"
        out = git(
            base,
            "clone",
            "--quiet",
            "--no-tags",
            "--single-branch",
            "--branch",
            branch,
            "--reference-if-able",
            str(repo),
            url,
            str(work),
            check=False,
        )
        if out.returncode != 0:
            if "not found in upstream" in out.stderr or "Remote branch" in out.stderr:
                raise SluiceError(f"branch {branch!r} does not exist on remote {remote!r} ({url})")
            raise SluiceError(f"cannot clone {url}: {last_line(out)}")
        checkpoint("after-clone")
        yield Checkout(work, identity_args(repo))


@contextlib.contextmanager
def clone_commit(repo: Path, commit: str) -> Iterator[Checkout]:
    """A clone of the local repository itself, detached at `commit`; `origin` is `repo`."""
    with _tempdir() as base:
        work = base / "work"
        git(base, "clone", "--quiet", "--shared", "--no-checkout", "--no-tags", str(repo), str(work))
        checkout = Checkout(work, identity_args(repo))
        checkout.git("checkout", "--quiet", "--detach", commit)
        checkpoint("after-clone")
        yield checkout
