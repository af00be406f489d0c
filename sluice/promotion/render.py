"""Render an overlay with the real `kubectl kustomize` and read back what Argo CD would apply.

Promotion renders before it commits: a change that does not build must never reach the branch
Argo CD watches, and the rendered output (not the patch we wrote) is what proves the model URI
and the image landed on the InferenceService.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import SluiceError
from sluice.promotion.overlay import ANN_VERSION, is_pinned

KUSTOMIZE_TIMEOUT_S = 120


def kustomize_build(directory: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize DIR` (or a standalone `kustomize build`), parsed into objects."""
    if shutil.which("kubectl"):
        cmd = ["kubectl", "kustomize", str(directory)]
    elif shutil.which("kustomize"):
        cmd = ["kustomize", "build", str(directory)]
    else:
        raise SluiceError("neither kubectl nor kustomize is installed: cannot render the overlay")
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=KUSTOMIZE_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        raise SluiceError(f"rendering {directory} timed out after {KUSTOMIZE_TIMEOUT_S}s") from exc
    if out.returncode != 0:
        lines = [line for line in out.stderr.strip().splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit {out.returncode}"
        raise SluiceError(f"rendering {directory} failed: {reason}")
    try:
        return [doc for doc in yaml.safe_load_all(out.stdout) if isinstance(doc, dict)]
    except yaml.YAMLError as exc:
        raise SluiceError(f"rendering {directory} produced unparsable YAML: {exc}") from exc


def _images(node: Any, path: str) -> Iterator[tuple[str, str]]:
    """Every `image:` value under a containers-like list, with a readable location."""
    if isinstance(node, dict):
        for key, value in node.items():
            where = f"{path}.{key}" if path else str(key)
            if key == "image" and isinstance(value, str):
                yield where, value
            else:
                yield from _images(value, where)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _images(item, f"{path}[{index}]")


def images_in(objects: list[dict[str, Any]]) -> list[tuple[str, str]]:
    found = []
    for obj in objects:
        name = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
        for where, image in _images(obj.get("spec"), "spec"):
            found.append((f"{name} {where}", image))
    return found


@dataclass(frozen=True)
class Rendered:
    objects: list[dict[str, Any]]
    image_lines: list[str]
    model_lines: list[str]
    effective_image: str  # what the predictor container will run


def inspect(objects: list[dict[str, Any]], resource: str) -> Rendered:
    """Find the InferenceService and the image its predictor runs; refuse unpinned images."""
    unpinned = [f"{where}: {image}" for where, image in images_in(objects) if not is_pinned(image)]
    if unpinned:
        raise SluiceError("rendered output has images not pinned by digest: " + "; ".join(unpinned))
    services = [
        o
        for o in objects
        if o.get("kind") == "InferenceService" and (o.get("metadata") or {}).get("name") == resource
    ]
    if len(services) != 1:
        raise SluiceError(
            f"rendered output has {len(services)} InferenceService named {resource!r}, expected 1"
        )
    isvc = services[0]
    model = ((isvc.get("spec") or {}).get("predictor") or {}).get("model") or {}
    image = model.get("image")
    if not image:
        runtime_name = model.get("runtime")
        runtimes = [
            o
            for o in objects
            if o.get("kind") == "ServingRuntime" and (o.get("metadata") or {}).get("name") == runtime_name
        ]
        containers = ((runtimes[0].get("spec") or {}).get("containers") or []) if runtimes else []
        image = containers[0].get("image") if containers else None
    if not image:
        raise SluiceError(
            f"cannot tell which image serves {resource}: no predictor.model.image and no "
            f"ServingRuntime {model.get('runtime')!r} in the rendered output"
        )
    annotations = (isvc.get("metadata") or {}).get("annotations") or {}
    model_lines = [
        f"storageUri: {model.get('storageUri', '<none>')}",
        f"{ANN_VERSION}: {annotations.get(ANN_VERSION, '<none>')}",
    ]
    image_lines = [f"{where}: {img}" for where, img in images_in(objects)]
    return Rendered(objects=objects, image_lines=image_lines, model_lines=model_lines, effective_image=image)
