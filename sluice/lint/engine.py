"""Run every lint rule over a set of paths and return the problems.

Speed comes from overlap, not from skipping: the external tools (kubectl kustomize per
kustomization, one hadolint, one tekton-lint) start first in a small process pool, and Python
parses and validates while they run. Schemas are loaded once per run (CRDs from a cache).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import SluiceError
from sluice.lint import dockerfile, kustomize, tekton
from sluice.lint.crds import load_crds
from sluice.lint.findings import Finding
from sluice.lint.images import image_findings
from sluice.lint.problems import Problem
from sluice.lint.validate import Schemas, discover_sluice_schemas, validate_kustomization, validate_object
from sluice.lint.yamlload import Document, read_yaml_file

# The repository's deliverable folders; tests/ is left out (tests lint their fixtures explicitly).
DEFAULT_SCOPE = (
    "apps",
    "clusters",
    "tekton",
    "policies",
    ".argocd",
    "images",
    "sluice",
    "ml",
    "gates",
    ".github",
    ".ci",
)
# Folders whose YAML is Kubernetes manifests and whose kustomizations must render.
MANIFEST_FOLDERS = ("apps", "clusters", "tekton", "policies", ".argocd")
# Folders whose YAML is configuration of other tools: parse only.
CONFIG_FOLDERS = (".github", ".ci")
SKIP_DIRS = frozenset(
    {
        "node_modules",
        ".git",
        ".sluice",
        "__pycache__",
        ".pytest_cache",
        ".ruff_cache",
        ".venv",
        "build",
        "dist",
    }
)
YAML_SUFFIXES = (".yaml", ".yml")

_PlainLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class Targets:
    yaml_files: list[Path] = field(default_factory=list)
    dockerfiles: list[Path] = field(default_factory=list)
    render_dirs: list[Path] = field(default_factory=list)


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


def _walk(base: Path, skip_tests: bool) -> Iterable[Path]:
    for dirpath, dirnames, filenames in os.walk(base):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not (skip_tests and d == "tests"))
        for name in sorted(filenames):
            yield Path(dirpath) / name


def collect_targets(paths: list[Path], root: Path) -> Targets:
    whole_repo = not paths or any(p.resolve() == root for p in paths)
    targets = Targets()
    if whole_repo:
        bases = [root / top for top in DEFAULT_SCOPE if (root / top).is_dir()]
        files = [p for p in sorted(root.iterdir()) if p.is_file() and p.suffix in YAML_SUFFIXES]
    else:
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            raise SluiceError(f"lint: no such file or directory: {', '.join(missing)}")
        bases = [p for p in paths if p.is_dir()]
        files = [p for p in paths if p.is_file()]
    for base in bases:
        files.extend(_walk(base, skip_tests=whole_repo))
    seen: set[Path] = set()
    for file in files:
        file = file.resolve()
        if file in seen:
            continue
        seen.add(file)
        if file.suffix in YAML_SUFFIXES or file.name == "Kustomization":
            targets.yaml_files.append(file)
            if kustomize.is_kustomization_file(file):
                in_scope = not whole_repo or _top(file, root) in MANIFEST_FOLDERS
                if in_scope:
                    targets.render_dirs.append(file.parent)
        elif dockerfile.is_dockerfile(file):
            targets.dockerfiles.append(file)
    return targets


def _top(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).parts[0]
    except (ValueError, IndexError):
        return ""


def shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def _is_kfp_ir(data: Any) -> bool:
    return isinstance(data, dict) and "pipelineInfo" in data and ("root" in data or "deploymentSpec" in data)


def _is_object(data: Any) -> bool:
    return isinstance(data, dict) and "apiVersion" in data and "kind" in data


def _fingerprint(origin: Path | None, obj: dict, finding: Finding, named: bool) -> tuple:
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    who = (meta.get("namespace"), meta.get("name")) if named else ()
    return (str(origin), obj.get("kind"), *who, finding.keys, finding.rule, finding.message)


def object_findings(obj: dict, schemas: Schemas) -> list[Finding]:
    """Findings for one object, computed once per distinct content: a base rendered by three
    kustomizations (and written in its own file) is the same object four times."""
    try:
        key = json.dumps(obj, sort_keys=True, default=str)
    except (TypeError, ValueError):  # non-string keys (YAML allows them): just validate
        return [*validate_object(obj, schemas), *image_findings(obj)]
    if key not in schemas.memo:
        schemas.memo[key] = [*validate_object(obj, schemas), *image_findings(obj)]
    return schemas.memo[key]


def run(paths: list[Path], root: Path, crds_dir: Path, workers: int | None = None) -> Report:
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

    pool = ThreadPoolExecutor(max_workers=workers or max(2, os.cpu_count() or 2))
    scratch = tempfile.TemporaryDirectory(prefix="sluice-lint-")
    try:
        # 1. External tools start first so they overlap with the Python work below.
        docker_names = [shown(p, root) for p in targets.dockerfiles]
        hadolint_job = _start(pool, dockerfile.hadolint_command(docker_names), root) if docker_names else None

        parsed: dict[Path, list[Document]] = {}
        for file in targets.yaml_files:
            docs, parse_problems = read_yaml_file(file, shown(file, root))
            parsed[file] = docs
            problems.extend(parse_problems)
            stats["documents"] += len(docs)

        render_jobs: list[tuple[Path, Future]] = []
        for i, directory in enumerate(targets.render_dirs):
            kfile = next(directory / n for n in kustomize.KUSTOMIZATION_NAMES if (directory / n).is_file())
            docs = parsed.get(kfile.resolve()) or []
            if docs and kustomize.is_component(docs[0].data):
                continue  # components only make sense inside a kustomization that uses them
            render_jobs.append((kfile, pool.submit(kustomize.render, directory, Path(scratch.name) / str(i))))

        tekton_files = sorted(
            {shown(f, root) for f, docs in parsed.items() if any(tekton.is_tekton(d.data) for d in docs)}
        )
        tekton_job = (
            _start(pool, tekton.tekton_lint_command(root, tekton_files), root) if tekton_files else None
        )

        # 2. Schemas, then every document as written.
        schemas = Schemas(load_crds(crds_dir), crds_dir, discover_sluice_schemas(root))
        if schemas.crds is not None:
            for message in schemas.crds.problems:
                problems.append(
                    Problem(str(crds_dir), 1, "crd-missing", f"unreadable CRD file {message}", "warning")
                )

        kustomize_inputs = _kustomize_inputs(parsed)

        direct_seen: set[tuple] = set()
        tekton_resources: list[tuple[str, int, dict]] = []
        for file, docs in parsed.items():
            problems.extend(
                _check_file(file, docs, root, schemas, kustomize_inputs, direct_seen, tekton_resources, stats)
            )

        problems.extend(tekton.cross_references(tekton_resources))

        # 3. Rendered output of every kustomization.
        rendered_seen: set[tuple] = set()
        for kfile, job in render_jobs:
            result: kustomize.Rendered = job.result()
            stats["kustomizations_rendered"] += 1
            problems.extend(
                _check_rendered(
                    kfile,
                    result,
                    parsed.get(kfile.resolve()),
                    root,
                    schemas,
                    direct_seen,
                    rendered_seen,
                    stats,
                )
            )

        # 4. Dockerfiles: our pin check, then hadolint's findings.
        for file in targets.dockerfiles:
            problems.extend(
                dockerfile.check_base_images(
                    file.read_text(encoding="utf-8", errors="replace"), shown(file, root)
                )
            )
        if docker_names:
            problems.extend(dockerfile.parse_hadolint(_finish(hadolint_job), docker_names))
        if tekton_files:
            problems.extend(tekton.parse_tekton_lint(_finish(tekton_job), tekton_files))
    finally:
        pool.shutdown(wait=True)
        scratch.cleanup()

    unique = sorted(set(problems), key=lambda p: (p.path, p.line, p.rule, p.message))
    stats["seconds"] = round(time.perf_counter() - started, 3)
    used = {
        shown(Path(source), root) if Path(source).is_absolute() else source: sorted(kinds)
        for source, kinds in sorted(schemas.used.items())
    }
    return Report(unique, stats, used)


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


def _check_file(
    file: Path,
    docs: list[Document],
    root: Path,
    schemas: Schemas,
    kustomize_inputs: set[Path],
    direct_seen: set[tuple],
    tekton_resources: list,
    stats: dict,
) -> list[Problem]:
    name = shown(file, root)
    top = _top(file, root)
    out: list[Problem] = []
    if kustomize.is_kustomization_file(file):
        for doc in docs[:1]:
            out.extend(_place(doc, f) for f in validate_kustomization(doc.data))
        return out
    if (
        file in kustomize_inputs
        or top in CONFIG_FOLDERS
        or (file.parent == root and file.name.startswith("."))
    ):
        return out  # parse-only: kustomize inputs, CI and tool configuration
    for doc in docs:
        if doc.data is None:
            continue
        if _is_kfp_ir(doc.data):
            continue  # compiled KFP IR: parsed above, its schema is KFP's business
        if not _is_object(doc.data):
            if top in MANIFEST_FOLDERS:
                out.append(
                    Problem(
                        name,
                        doc.line,
                        "k8s-not-an-object",
                        "document has no apiVersion/kind and no kustomization references it",
                        "warning",
                    )
                )
            continue
        stats["objects"] += 1
        for finding in object_findings(doc.data, schemas):
            direct_seen.add(_fingerprint(file, doc.data, finding, named=False))
            out.append(_place(doc, finding))
        if tekton.is_tekton(doc.data):
            tekton_resources.append((name, doc.line, doc.data))
    return out


def _place(doc: Document, finding: Finding) -> Problem:
    return Problem(doc.path, doc.line_of(finding.keys), finding.rule, finding.message, finding.severity)


def _check_rendered(
    kfile: Path,
    result: kustomize.Rendered,
    kdocs: list[Document] | None,
    root: Path,
    schemas: Schemas,
    direct_seen: set[tuple],
    rendered_seen: set[tuple],
    stats: dict,
) -> list[Problem]:
    name = shown(kfile, root)
    if not result.ok:
        return [Problem(name, 1, "kustomize-render", result.error.replace(f"{root}/", ""))]
    try:
        objects = [o for o in yaml.load_all(result.stdout, Loader=_PlainLoader) if o is not None]
    except yaml.YAMLError as exc:
        return [Problem(name, 1, "kustomize-render", f"rendered output does not parse: {exc}")]
    out: list[Problem] = []
    for obj in objects:
        stats["rendered_objects"] += 1
        origin = kustomize.origin_of(obj, result.scratch)
        if not isinstance(obj, dict):
            continue
        for finding in object_findings(obj, schemas):
            if _fingerprint(origin, obj, finding, named=False) in direct_seen:
                continue  # already reported at the line of the file it came from
            key = _fingerprint(origin, obj, finding, named=True)
            if key in rendered_seen:
                continue
            rendered_seen.add(key)
            meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
            source = f" (from {shown(origin, root)})" if origin else ""
            line = 1
            if finding.rule == "image-digest" and kdocs:
                line = kustomize.image_entry_line(kdocs[0], _image_at(obj, finding.keys))
            out.append(
                Problem(
                    name,
                    line,
                    finding.rule,
                    f"rendered {obj.get('kind')}/{meta.get('name')}{source}: {finding.message}",
                    finding.severity,
                )
            )
    return out


def _image_at(obj: Any, keys: tuple) -> str:
    node = obj
    for key in keys:
        try:
            node = node[key]
        except (KeyError, IndexError, TypeError):
            return ""
    return node if isinstance(node, str) else ""
