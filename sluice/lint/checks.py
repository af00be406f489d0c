"""Checking what was parsed and what kustomize rendered: one finding per problem, placed on a line.

A finding in a file is reported at its line; the same finding again in rendered output (a base
rendered by three overlays) is reported once, at the kustomization that rendered it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sluice.lint import kustomize, tekton
from sluice.lint.findings import Finding
from sluice.lint.images import image_findings
from sluice.lint.problems import Problem
from sluice.lint.targets import CONFIG_FOLDERS, MANIFEST_FOLDERS, shown, top_folder
from sluice.lint.validate import Schemas, validate_kustomization, validate_object
from sluice.lint.yamlload import Document

_PlainLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


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


def check_file(
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
    top = top_folder(file, root)
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


def check_rendered(
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
