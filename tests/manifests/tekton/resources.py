"""Reading the repository's Tekton YAML the way the lint engine does: one entry per document,
with the repo-relative path and the 1-based line where the document starts."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[3]
TEKTON_DIR = REPO / "tekton"


def load_documents(path: Path, root: Path = REPO) -> list[tuple[str, int, dict]]:
    loader = yaml.SafeLoader(path.read_text())
    docs: list[tuple[str, int, dict]] = []
    try:
        while loader.check_node():
            node = loader.get_node()
            obj = loader.construct_document(node)
            if isinstance(obj, dict):
                docs.append((str(path.relative_to(root)), node.start_mark.line + 1, obj))
    finally:
        loader.dispose()
    return docs


def tekton_files() -> list[Path]:
    return sorted(p for p in TEKTON_DIR.rglob("*.yaml") if p.name != "kustomization.yaml")


def tekton_resources() -> list[tuple[str, int, dict]]:
    return [doc for path in tekton_files() for doc in load_documents(path)]


def by_kind_name(resources: list[tuple[str, int, dict]], kind: str, name: str) -> dict:
    for _path, _line, obj in resources:
        if obj.get("kind") == kind and obj.get("metadata", {}).get("name") == name:
            return obj
    raise KeyError(f"{kind}/{name} not found")


def mutable_copy(resources: list[tuple[str, int, dict]]) -> list[tuple[str, int, dict]]:
    return [(path, line, copy.deepcopy(obj)) for path, line, obj in resources]


def pipeline_task(pipeline: dict, name: str) -> dict:
    for task in pipeline["spec"].get("tasks", []) + pipeline["spec"].get("finally", []):
        if task["name"] == name:
            return task
    raise KeyError(name)


def steps(resources: list[tuple[str, int, dict]]) -> list[tuple[str, str, dict]]:
    """(task name, step name, step) for every step of every Task."""
    out = []
    for _path, _line, obj in resources:
        if obj.get("kind") == "Task":
            for step in obj["spec"].get("steps", []):
                out.append((obj["metadata"]["name"], step["name"], step))
    return out
