"""Run every lint rule over a set of paths and return the problems.

Speed comes from overlap, not from skipping: the external tools (kubectl kustomize per
kustomization, one hadolint, one tekton-lint) start first in a small process pool, and Python
parses and validates while they run. Schemas are loaded once per run (CRDs from a cache).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice.lint import dockerfile, kustomize, tekton
from sluice.lint.checks import check_file, check_rendered
from sluice.lint.crds import CrdSource
from sluice.lint.problems import Problem
from sluice.lint.targets import Targets, collect_targets, shown
from sluice.lint.validate import Schemas, discover_sluice_schemas
from sluice.lint.yamlload import Document, read_yaml_file


@dataclass
class Report:
    problems: list[Problem]
    stats: dict[str, Any]
    schemas_used: dict[str, list[str]]

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity != "error"]


















@dataclass
class Jobs:
    """The external tools started for one run, and the scratch space kustomize renders into."""

    pool: ThreadPoolExecutor
    scratch: Path
    hadolint: Future | None = None
    tekton_lint: Future | None = None
    renders: list[tuple[Path, Future]] = field(default_factory=list)


def run(paths: list[Path], root: Path, crds: Path | CrdSource, workers: int | None = None) -> Report:
    """Lint `paths` (default: the repository's deliverable folders) with the CRDs of `crds`."""
    started = time.perf_counter()
    root = root.resolve()
    targets = collect_targets([Path(p) for p in paths], root)
    problems: list[Problem] = []
    stats: dict[str, Any] = {
        "files": len(targets.yaml_files) + len(targets.dockerfiles),
        "documents": 0,
        "objects": 0,
        "kustomizations_rendered": 0,
        "rendered_objects": 0,
        "dockerfiles": len(targets.dockerfiles),
    }
    with tempfile.TemporaryDirectory(prefix="sluice-lint-") as scratch:
        jobs = Jobs(ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2)), Path(scratch))
        try:
            # External tools start first so they overlap with the Python work below.
            docker_names = [shown(p, root) for p in targets.dockerfiles]
            if docker_names:
                jobs.hadolint = _start(jobs.pool, dockerfile.hadolint_command(docker_names), root)
            parsed = _parse(targets, root, problems, stats)
            tekton_files = _start_renders_and_tekton_lint(jobs, targets, parsed, root)
            schemas = _schemas(CrdSource.of(crds), root, problems)
            problems.extend(_check_documents(parsed, root, schemas, stats, jobs))
            problems.extend(_check_dockerfiles(targets, root))
            if docker_names:
                problems.extend(dockerfile.parse_hadolint(_finish(jobs.hadolint), docker_names))
            if tekton_files:
                problems.extend(tekton.parse_tekton_lint(_finish(jobs.tekton_lint), tekton_files))
        finally:
            jobs.pool.shutdown(wait=True)
    unique = sorted(set(problems), key=lambda p: (p.path, p.line, p.rule, p.message))
    stats["seconds"] = round(time.perf_counter() - started, 3)
    used = {
        shown(Path(source), root) if Path(source).is_absolute() else source: sorted(kinds)
        for source, kinds in sorted(schemas.used.items())
    }
    return Report(unique, stats, used)


def _parse(targets: Targets, root: Path, problems: list[Problem], stats: dict) -> dict[Path, list[Document]]:
    parsed: dict[Path, list[Document]] = {}
    for file in targets.yaml_files:
        docs, parse_problems = read_yaml_file(file, shown(file, root))
        parsed[file] = docs
        problems.extend(parse_problems)
        stats["documents"] += len(docs)
    return parsed


def _start_renders_and_tekton_lint(
    jobs: Jobs, targets: Targets, parsed: dict[Path, list[Document]], root: Path
) -> list[str]:
    """Start `kubectl kustomize` per kustomization and one tekton-lint; returns the Tekton files."""
    for i, directory in enumerate(targets.render_dirs):
        kfile = next(directory / n for n in kustomize.KUSTOMIZATION_NAMES if (directory / n).is_file())
        docs = parsed.get(kfile.resolve()) or []
        if docs and kustomize.is_component(docs[0].data):
            continue  # components only make sense inside a kustomization that uses them
        jobs.renders.append((kfile, jobs.pool.submit(kustomize.render, directory, jobs.scratch / str(i))))
    tekton_files = sorted(
        {shown(f, root) for f, docs in parsed.items() if any(tekton.is_tekton(d.data) for d in docs)}
    )
    if tekton_files:
        jobs.tekton_lint = _start(jobs.pool, tekton.tekton_lint_command(root, tekton_files), root)
    return tekton_files


def _schemas(source: CrdSource, root: Path, problems: list[Problem]) -> Schemas:
    schemas = Schemas(source.load(), source.directory, discover_sluice_schemas(root))
    if schemas.crds is not None:
        for message in schemas.crds.problems:
            unreadable = f"unreadable CRD file {message}"
            problems.append(Problem(str(source.directory), 1, "crd-missing", unreadable, "warning"))
    return schemas


def _check_documents(
    parsed: dict[Path, list[Document]], root: Path, schemas: Schemas, stats: dict, jobs: Jobs
) -> list[Problem]:
    """Every document as written, the Tekton cross-references, then each kustomization's output."""
    problems: list[Problem] = []
    kustomize_inputs = _kustomize_inputs(parsed)
    direct_seen: set[tuple] = set()
    tekton_resources: list[tuple[str, int, dict]] = []
    for file, docs in parsed.items():
        problems.extend(
            check_file(file, docs, root, schemas, kustomize_inputs, direct_seen, tekton_resources, stats)
        )
    problems.extend(tekton.cross_references(tekton_resources))
    rendered_seen: set[tuple] = set()
    for kfile, job in jobs.renders:
        result: kustomize.Rendered = job.result()
        stats["kustomizations_rendered"] += 1
        kdocs = parsed.get(kfile.resolve())
        problems.extend(
            check_rendered(kfile, result, kdocs, root, schemas, direct_seen, rendered_seen, stats)
        )
    return problems


def _check_dockerfiles(targets: Targets, root: Path) -> list[Problem]:
    return [
        problem
        for file in targets.dockerfiles
        for problem in dockerfile.check_base_images(
            file.read_text(encoding="utf-8", errors="replace"), shown(file, root)
        )
    ]


def _kustomize_inputs(parsed: dict[Path, list[Document]]) -> set[Path]:
    """Files kustomizations read as patches/configs, including kustomizations beside a file linted alone
    (so `sluice lint overlay/patch.yaml` does not judge a patch as a whole object)."""
    kustomizations = {f: docs for f, docs in parsed.items() if kustomize.is_kustomization_file(f)}
    for directory in {f.parent for f in parsed}:
        for name in kustomize.KUSTOMIZATION_NAMES:
            candidate = directory / name
            if candidate not in kustomizations and candidate.is_file():
                kustomizations[candidate] = read_yaml_file(candidate, str(candidate))[0]
    inputs: set[Path] = set()
    for file, docs in kustomizations.items():
        if docs:
            inputs |= kustomize.referenced_inputs(file, docs[0].data)
    return inputs


TOOL_TIMEOUT_SECONDS = 300


def _run_tool(command: list[str], cwd: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, check=False, timeout=TOOL_TIMEOUT_SECONDS
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, -1, "", f"timed out after {TOOL_TIMEOUT_SECONDS} s")


def _start(pool: ThreadPoolExecutor, command: list[str] | None, cwd: Path) -> Future | None:
    return None if command is None else pool.submit(_run_tool, command, cwd)


def _finish(job: Future | None):  # type: ignore[no-untyped-def]
    return None if job is None else job.result()








