"""Which files `sluice lint` looks at: the repository's deliverable folders, or the paths given."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sluice.errors import SluiceError
from sluice.lint import dockerfile, kustomize

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


@dataclass
class Targets:
    yaml_files: list[Path] = field(default_factory=list)
    dockerfiles: list[Path] = field(default_factory=list)
    render_dirs: list[Path] = field(default_factory=list)


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
                in_scope = not whole_repo or top_folder(file, root) in MANIFEST_FOLDERS
                if in_scope:
                    targets.render_dirs.append(file.parent)
        elif dockerfile.is_dockerfile(file):
            targets.dockerfiles.append(file)
    return targets


def top_folder(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).parts[0]
    except (ValueError, IndexError):
        return ""


def shown(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)
