"""The one way Sluice runs git: no prompts, stable messages, a timeout, one-line errors.

Promotion, the laptop loop, rollback and the code identity of a run all call `git()`; the error
names the subcommand and git's own last line (a hook's message, a refusal), never a traceback.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from sluice.errors import SluiceError

GIT_TIMEOUT_S = 300
# Set in images built from a commit (no .git inside): the code commit they were built from.
COMMIT_ENV = "SLUICE_GIT_COMMIT"


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env["GIT_TERMINAL_PROMPT"] = "0"  # never hang on a credential prompt
    env["LC_ALL"] = "C"  # stable messages to parse
    return env


def git(cwd: str | Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `git args` in `cwd`; with check, a failure raises SluiceError with git's last line."""
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, text=True, env=git_env(), timeout=GIT_TIMEOUT_S
        )
    except FileNotFoundError as exc:
        raise SluiceError("git is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise SluiceError(f"git {args[0]} timed out after {GIT_TIMEOUT_S}s") from exc
    if check and out.returncode != 0:
        raise SluiceError(f"git {args[0]} failed: {last_line(out)}")
    return out


def blob(cwd: str | Path, rev: str, path: str) -> bytes | None:
    """The exact bytes of `path` at `rev` (no newline translation), or None when it is not there."""
    try:
        out = subprocess.run(
            ["git", "show", f"{rev}:{path}"],
            cwd=cwd,
            capture_output=True,
            env=git_env(),
            timeout=GIT_TIMEOUT_S,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired) as exc:
        raise SluiceError(f"git show {rev}:{path} failed ({type(exc).__name__})") from exc
    return out.stdout if out.returncode == 0 else None


def last_line(out: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in (out.stderr or out.stdout).strip().splitlines() if line.strip()]
    return lines[-1] if lines else f"exit {out.returncode}"


def work_tree(start: str | Path | None = None) -> Path | None:
    """The git work tree containing `start` (default: cwd), or None outside git."""
    try:
        out = git(start or Path.cwd(), "rev-parse", "--show-toplevel", check=False)
    except SluiceError:
        return None
    return Path(out.stdout.strip()) if out.returncode == 0 else None


def code_commit(start: str | Path | None = None) -> str:
    """The commit code came from; '+dirty' when tracked files differ; $SLUICE_GIT_COMMIT outside git."""
    cwd = start or Path(__file__).resolve().parent
    try:
        head = git(cwd, "rev-parse", "HEAD", check=False)
        if head.returncode != 0:
            return os.environ.get(COMMIT_ENV, "unknown")
        dirty = git(cwd, "status", "--porcelain", "--untracked-files=no").stdout.strip()
    except SluiceError:
        return os.environ.get(COMMIT_ENV, "unknown")
    sha = head.stdout.strip()
    return f"{sha}+dirty" if dirty else sha
