"""A run's identity, cheap enough to compute before importing anything heavy.

The run key hashes everything that decides what a training run produces: the bytes of the data,
reference and contract, the code (git commit plus a fingerprint of the sources a training run
imports, because a dirty tree keeps its commit), the policy and the parameters. The same key
means the same model, so `sluice run` can answer an unchanged re-run from its record without
starting the pipeline, and registration can refuse to create a second version.

Which sources count is read off the import graph (grimp, the engine behind import-linter): the
modules the training entry points import, directly or not, and the data files (schemas, default
policies) in their folders. Editing the linter or the promotion code therefore never retrains
a model, and a module added to training is counted without anyone updating a list.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sluice import tags

TRAINING_PACKAGES = ("ml", "gates", "sluice")
# What a training run executes: the local runner, the pipeline (whose components import every
# step), and the model server the model gate starts as a process of its own (not an import).
TRAINING_ENTRY_POINTS = ("ml.runners.local", "ml.pipelines.training", "ml.serving.__main__")
DATA_SUFFIXES = frozenset({".json", ".yaml", ".yml", ".html"})


def training_modules(
    packages: Iterable[str] = TRAINING_PACKAGES, entry_points: Iterable[str] = TRAINING_ENTRY_POINTS
) -> set[str]:
    """The entry points and every module of `packages` they import, with the packages around them."""
    import grimp

    graph = grimp.build_graph(*packages, cache_dir=None)
    found: set[str] = set()
    for entry in entry_points:
        found |= {entry, *graph.find_upstream_modules(entry)}
    with_parents = set(found)
    for name in found:
        parts = name.split(".")
        with_parents.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return with_parents


def module_file(name: str) -> Path | None:
    """The source file of module `name`, found under its top-level package without importing it."""
    top, *rest = name.split(".")
    spec = importlib.util.find_spec(top)
    if spec is None or not spec.submodule_search_locations:
        return None
    base = Path(next(iter(spec.submodule_search_locations))).joinpath(*rest)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def training_files(
    packages: Iterable[str] = TRAINING_PACKAGES, entry_points: Iterable[str] = TRAINING_ENTRY_POINTS
) -> dict[str, Path]:
    """Sources and data files a training run uses, keyed by a stable relative name."""
    files: dict[str, Path] = {}
    for name in training_modules(packages, entry_points):
        path = module_file(name)
        if path is None:
            continue
        is_package = path.name == "__init__.py"
        files[name.replace(".", "/") + ("/__init__.py" if is_package else ".py")] = path
        folder = (name if is_package else name.rsplit(".", 1)[0]).replace(".", "/")
        for data in path.parent.iterdir():
            if data.suffix in DATA_SUFFIXES and data.is_file():
                files[f"{folder}/{data.name}"] = data
    return files


def code_fingerprint(
    packages: Iterable[str] = TRAINING_PACKAGES, entry_points: Iterable[str] = TRAINING_ENTRY_POINTS
) -> str:
    """sha256 over the training code and data files (relative name + bytes, sorted by name)."""
    digest = hashlib.sha256()
    for relative, path in sorted(training_files(packages, entry_points).items()):
        digest.update(relative.encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def run_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def registry_has_version(tracking_uri: str, model_name: str, version: str, key: str) -> bool | None:
    """Does the registry still hold `version` tagged with this run key? None = cannot tell cheaply.

    SQLite is read directly and an HTTP server through its REST API, so the fast path never
    imports MLflow (about 1.5 s); any other store falls back to the full, idempotent run.
    """
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))  # sqlite:////abs → /abs; sqlite:///rel → rel
        if not db.is_file():
            return False
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                stage = conn.execute(
                    "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                    (model_name, int(version)),
                ).fetchone()
                tag = conn.execute(
                    "SELECT value FROM model_version_tags"
                    " WHERE name = ? AND version = ? AND key = ?",
                    (model_name, int(version), tags.RUN_KEY),
                ).fetchone()
        except sqlite3.Error:
            return None
        return bool(stage) and stage[0] != "Deleted_Internal" and bool(tag) and tag[0] == key
    if tracking_uri.startswith(("http://", "https://")):
        query = urllib.parse.urlencode({"name": model_name, "version": version})
        url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/model-versions/get?{query}"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - the user's tracking server
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return False if exc.code == 404 else None
        except (urllib.error.URLError, OSError, ValueError):
            return None
        version_tags = {t["key"]: t.get("value") for t in body.get("model_version", {}).get("tags", [])}
        return version_tags.get(tags.RUN_KEY) == key
    return None
