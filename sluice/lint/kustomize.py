"""Kustomizations: what they reference, and what they render to with the real `kubectl kustomize`.

Files named in `patches`, `configurations`, `transformers` … are kustomize inputs, not objects:
a strategic-merge patch is a partial Deployment and would fail every `required` check. They are
parse-checked only; their effect is validated in the rendered output.

Each kustomization is rendered through a throwaway wrapper that adds
`buildMetadata: [originAnnotations]`, so every rendered object names the file it came from. That
lets us (a) say where a broken object originated and (b) not report an error twice when the
file it came from was already validated directly. If the wrapper fails, the kustomization is
rendered directly so the user sees kustomize's own message about their own file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from sluice.lint.yamlload import Document

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_DEPRECATED = {
    "bases": "use 'resources'",
    "patchesStrategicMerge": "use 'patches'",
    "patchesJson6902": "use 'patches'",
    "commonLabels": "use 'labels'",
    "vars": "use 'replacements'",
    "imageTags": "use 'images'",
}


@cache
def structure_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(Path(__file__).with_name("kustomization.schema.json").read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def deprecated_fields(data: Any) -> list[tuple[str, str]]:
    if not isinstance(data, dict):
        return []
    return [(key, hint) for key, hint in _DEPRECATED.items() if key in data]


def is_kustomization_file(path: Path) -> bool:
    return path.name in KUSTOMIZATION_NAMES


def is_component(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "Component"


def referenced_inputs(kustomization: Path, data: Any) -> set[Path]:
    """Files a kustomization reads as kustomize inputs (patches, transformer configs, generator files)."""
    if not isinstance(data, dict):
        return set()
    base = kustomization.parent
    names: list[str] = []

    def strings(key: str) -> None:
        value = data.get(key)
        if isinstance(value, list):
            names.extend(v for v in value if isinstance(v, str))

    for key in (
        "patchesStrategicMerge",
        "configurations",
        "transformers",
        "generators",
        "validators",
        "crds",
    ):
        strings(key)
    for key in ("patches", "patchesJson6902", "replacements"):
        for entry in data.get(key) or ():
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                names.append(entry["path"])
    openapi = data.get("openapi")
    if isinstance(openapi, dict) and isinstance(openapi.get("path"), str):
        names.append(openapi["path"])
    for key in ("configMapGenerator", "secretGenerator"):
        for gen in data.get(key) or ():
            if not isinstance(gen, dict):
                continue
            for file in gen.get("files") or ():
                if isinstance(file, str):
                    names.append(file.split("=", 1)[-1])
            for env in [*(gen.get("envs") or ()), gen.get("env")]:
                if isinstance(env, str):
                    names.append(env)
    return {(base / name).resolve() for name in names if "://" not in name}


def kubectl() -> str | None:
    return shutil.which("kubectl")


@dataclass
class Rendered:
    kustomization: Path
    ok: bool
    stdout: str
    error: str
    scratch: Path  # the wrapper directory origin paths are relative to


def render(directory: Path, scratch: Path) -> Rendered:
    """Render `directory` with `kubectl kustomize`, objects annotated with their origin."""
    exe = kubectl()
    if exe is None:
        return Rendered(
            directory, False, "", "kubectl not found on PATH; cannot render kustomizations", scratch
        )
    scratch.mkdir(parents=True, exist_ok=True)
    wrapper = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [os.path.relpath(directory, scratch)],
        "buildMetadata": ["originAnnotations"],
    }
    (scratch / "kustomization.yaml").write_text(yaml.safe_dump(wrapper), encoding="utf-8")
    wrapped = _kustomize(exe, scratch)
    if wrapped.returncode == 0:
        return Rendered(directory, True, wrapped.stdout, "", scratch)
    direct = _kustomize(exe, directory)
    if direct.returncode == 0:  # the wrapper itself was the problem: keep going without origins
        return Rendered(directory, True, direct.stdout, "", scratch)
    return Rendered(directory, False, "", _kustomize_error(direct.stderr or direct.stdout), scratch)


RENDER_TIMEOUT_SECONDS = 120


def _kustomize(exe: str, directory: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            [exe, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            check=False,
            timeout=RENDER_TIMEOUT_SECONDS,
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(
            [exe], -1, "", f"error: timed out after {RENDER_TIMEOUT_SECONDS} s"
        )


def _kustomize_error(text: str) -> str:
    """kubectl wraps kustomize's message in klog noise; keep the `err="..."` part when present."""
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return "kubectl kustomize failed without a message"
    line = lines[-1]
    marker = 'err="'
    if marker in line:
        line = line.split(marker, 1)[1]
        line = (line[:-1] if line.endswith('"') else line).replace('\\"', '"')
    elif line.startswith("error: "):
        line = line[len("error: ") :]
    return " ".join(line.split())


def origin_of(obj: Any, scratch: Path) -> Path | None:
    """The absolute source file recorded by originAnnotations, removing the annotation we added."""
    if not isinstance(obj, dict):
        return None
    annotations = (obj.get("metadata") or {}).get("annotations")
    if not isinstance(annotations, dict) or ORIGIN_ANNOTATION not in annotations:
        return None
    raw = annotations.pop(ORIGIN_ANNOTATION)
    if not annotations:
        obj["metadata"].pop("annotations")
    try:
        origin = yaml.safe_load(raw) or {}
    except yaml.YAMLError:
        return None
    rel = origin.get("path") or origin.get("configuredIn")
    if not isinstance(rel, str) or "://" in rel:
        return None
    return Path(os.path.normpath(scratch / rel))


def image_entry_line(kustomization: Document | None, image: str) -> int:
    """The `images:` entry of a kustomization that rewrote `image`, for a useful line number."""
    if kustomization is None or not isinstance(kustomization.data, dict):
        return 1
    repo = image.split("@", 1)[0]
    repo = repo.rsplit(":", 1)[0] if ":" in repo.rsplit("/", 1)[-1] else repo
    for i, entry in enumerate(kustomization.data.get("images") or ()):
        if isinstance(entry, dict) and repo in (entry.get("newName"), entry.get("name")):
            return kustomization.line_of(["images", i])
    return 1
