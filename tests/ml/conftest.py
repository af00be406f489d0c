"""Fixtures for the training side: a small seeded demo slice and a CLI runner.

The pipeline tests train on a 3,000 + 3,000-row slice written by the same generator as the
50 k-row demo (same seed, fewer rows), so one pipeline run costs seconds, not a minute.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ml.data.demo import write_demo
from sluice import cli
from tests.conftest import GIT_IDENTITY, REPO_ROOT, git

HERE = Path(__file__).resolve().parent
LENIENT_POLICY = HERE / "lenient-policy.yaml"
STRICT_F1_POLICY = HERE / "strict-f1-policy.yaml"
SLICE_ROWS = 3000


@dataclass
class CliResult:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


@pytest.fixture
def sluice(capsys: pytest.CaptureFixture):
    """Run `sluice ARGS...` in-process through the real dispatcher; returns code, stdout, stderr."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        code = cli.main([str(a) for a in args])
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def demo_slice(tmp_path_factory: pytest.TempPathFactory):
    return write_demo(
        tmp_path_factory.mktemp("demo-slice"), reference_rows=SLICE_ROWS, current_rows=SLICE_ROWS
    )


def sqlite_versions(home: Path, model: str = "credit-default") -> list[int]:
    """Model versions in a home's SQLite store, read without MLflow (none if no store yet)."""
    db = home / "mlflow.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as conn:
        try:
            rows = conn.execute("SELECT version FROM model_versions WHERE name = ?", (model,)).fetchall()
        except sqlite3.OperationalError:  # store created but not migrated yet
            return []
    return sorted(r[0] for r in rows)


def promotion_branches(repo: Path) -> dict[str, str]:
    """Local `promote/...` branches of a repository and their tips."""
    out = subprocess.run(
        ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads/promote/"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if line.strip())


@pytest.fixture(scope="session", autouse=True)
def work_tree_gets_no_promotion_branch():
    """`sluice run` promotes into the repository of the current directory by default, and pytest
    runs from the real work tree: every run in these tests must pass --repo (a temp repository)
    or --no-promote. This fails the session if one of them forgot."""
    before = promotion_branches(REPO_ROOT)
    yield
    after = promotion_branches(REPO_ROOT)
    assert after == before, f"a test created promotion branches in {REPO_ROOT}: {set(after) - set(before)}"


def make_gitops_repo(base: Path) -> Path:
    """A fresh git repository holding copies of this work tree's apps/ and clusters/ (one commit)."""
    repo = base / "gitops"
    repo.mkdir()
    for folder in ("apps", "clusters"):
        shutil.copytree(REPO_ROOT / folder, repo / folder)
    git(repo, "init", "--quiet", "--initial-branch=main")
    # Repository-local identity: module-scoped fixtures run before the per-test identity fixture.
    git(repo, "config", "user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"])
    git(repo, "config", "user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"])
    git(repo, "add", "apps", "clusters")
    git(repo, "commit", "--quiet", "-m", "apps and clusters")
    return repo
