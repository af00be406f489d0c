"""Lint runs over the fixture trees, shared by the rule tests (each run renders real kustomizations)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.lint.crds import CrdSource
from sluice.lint.engine import Report, run

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def lint_run(repo_root: Path, pinned_crds: CrdSource):
    """Lint paths with the pinned schemas (fetched over the loopback mirror), or with `crds`."""

    def _run(*paths: Path | str, crds: Path | None = None) -> Report:
        return run([Path(p) for p in paths], repo_root, crds or pinned_crds)

    return _run


@pytest.fixture(scope="session")
def broken_report(lint_run) -> Report:
    return lint_run(FIXTURES / "broken")


@pytest.fixture(scope="session")
def good_report(lint_run) -> Report:
    return lint_run(FIXTURES / "good")


def matching(report: Report, file: str, rule: str) -> list:
    """Problems of `rule` reported at fixture `file` (a path relative to tests/sluice/lint/fixtures)."""
    return [p for p in report.problems if p.path == f"tests/sluice/lint/fixtures/{file}" and p.rule == rule]
