"""The laptop loop's last step: a passing `sluice run` promotes its version into staging.

The promotion is a commit on local branch `promote/<model>/staging-v<N>` of the repository the
run happens in, built by `gates.promotion.promote_to_local_branch` in a temporary clone: the
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
from pathlib import Path
from typing import Any, TextIO

from ml import paths
from ml.errors import SluiceError

ENV = "staging"


def check_repo_option(repo: str | None) -> None:
    """A usage error before training: --repo must at least be a directory."""
    if repo is not None and not Path(repo).is_dir():
        raise SluiceError(f"--repo is not a directory: {repo}")


def _git(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=False)


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
        return paths.repo_root(cwd)
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
    from gates.promotion import promote_to_local_branch
    from gates.promotion.promote import UI_ENV, load_key

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
