"""Tekton beyond its schemas: our cross-reference rule and IBM's tekton-lint.

Tekton's CRD schemas leave task specs, params and workspaces largely open, so a Pipeline naming a
Task or param that does not exist passes schema validation. The cross-reference rule lives in
`sluice/lint/tekton_refs.py` (owned by the Tekton engineer) and is imported lazily: until it
exists, lint says the rule is unavailable instead of silently passing. tekton-lint is a Node
tool; we use the project-local install (node_modules) or one on PATH and never download it.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from sluice.lint.problems import Problem

TEKTON_GROUPS = ("tekton.dev", "triggers.tekton.dev")


def is_tekton(obj: Any) -> bool:
    return isinstance(obj, dict) and str(obj.get("apiVersion", "")).split("/")[0] in TEKTON_GROUPS


def cross_references(resources: list[tuple[str, int, dict]]) -> list[Problem]:
    if not resources:
        return []
    try:
        module = importlib.import_module("sluice.lint.tekton_refs")
    except ModuleNotFoundError as exc:
        if exc.name != "sluice.lint.tekton_refs":
            raise
        path, line, _ = resources[0]
        return [
            Problem(
                path,
                line,
                "tekton-refs",
                "rule not available: sluice/lint/tekton_refs.py is missing",
                "warning",
            )
        ]
    out: list[Problem] = []
    for item in module.check_tekton_refs(resources):
        if isinstance(item, Problem):
            out.append(item)
        else:  # a contract breach in the rule must not crash the whole lint run
            path, line, _ = resources[0]
            out.append(Problem(path, line, "tekton-refs", f"rule returned {item!r} instead of a Problem"))
    return out


def tekton_lint_executable(root: Path) -> str | None:
    """$SLUICE_TEKTON_LINT, else the repo's node_modules, else PATH."""
    env = os.environ.get("SLUICE_TEKTON_LINT")
    if env:
        return env if Path(env).is_file() else None
    local = root / "node_modules" / ".bin" / "tekton-lint"
    if local.is_file():
        return str(local)
    return shutil.which("tekton-lint")


def tekton_lint_command(root: Path, files: list[str]) -> list[str] | None:
    exe = tekton_lint_executable(root)
    return None if exe is None else [exe, "--format", "json", "--color", "false", *files]


def parse_tekton_lint(result: subprocess.CompletedProcess | None, files: list[str]) -> list[Problem]:
    if result is None:
        return [
            Problem(
                files[0],
                1,
                "tekton-lint",
                "tekton-lint not installed (npm install @ibm/tekton-lint); Tekton files not linted",
                "warning",
            )
        ]
    try:
        if not result.stdout.strip() and result.returncode != 0:
            raise json.JSONDecodeError("no output", "", 0)  # a crash must not read as "no findings"
        entries = json.loads(result.stdout or "[]")
    except json.JSONDecodeError:
        message = (result.stderr or result.stdout or "no output").strip().splitlines()
        return [Problem(files[0], 1, "tekton-lint", f"tekton-lint failed: {message[0] if message else ''}")]
    problems = []
    for entry in entries:
        loc = entry.get("loc") or {}
        severity = "error" if entry.get("level") == "error" else "warning"
        problems.append(
            Problem(
                str(entry.get("path", files[0])),
                int(loc.get("startLine") or 1),
                f"tekton-lint:{entry.get('rule')}",
                str(entry.get("message", "")),
                severity,
            )
        )
    return problems
