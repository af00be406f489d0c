"""Every container image we deploy or build on must be pinned by digest.

A tag can be moved after review; a digest cannot, and Kyverno admits only digests. We look for
`image:` anywhere in a workload (Pod templates, Tekton steps/sidecars/stepTemplate, KServe
predictors, ServingRuntimes …) rather than listing paths per kind, so new kinds are covered by
default. Admission policies are skipped: their `image:` values are patterns, not references.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from sluice.lint.findings import Finding

DIGEST_PINNED = re.compile(r"^[^@\s]+@sha256:[0-9a-f]{64}$")
RULE = "image-digest"

# Groups whose objects hold image *patterns* (e.g. "*@sha256:*"), not image references.
_PATTERN_GROUPS = frozenset({"kyverno.io", "policies.kyverno.io", "policy.sigstore.dev", "wgpolicyk8s.io"})
_TEKTON_PARAM = re.compile(r"^\$\(params(?:\.([A-Za-z0-9_.-]+)|\[['\"]([^'\"]+)['\"]\])\)$")


def is_pinned(image: str) -> bool:
    return bool(DIGEST_PINNED.match(image.strip()))


def _walk(node: Any, keys: tuple) -> Iterator[tuple[tuple, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                yield (*keys, key), value
            else:
                yield from _walk(value, (*keys, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, (*keys, i))


def _tekton_param_defaults(obj: dict) -> dict[str, Any]:
    """A Task's own param defaults, so `image: $(params.base)` is checked against its default."""
    if not str(obj.get("apiVersion", "")).startswith("tekton.dev/"):
        return {}
    spec = obj.get("spec")
    params = spec.get("params") if isinstance(spec, dict) else None
    if not isinstance(params, list):
        return {}
    return {p["name"]: p["default"] for p in params if isinstance(p, dict) and "name" in p and "default" in p}


def image_findings(obj: Any) -> list[Finding]:
    if not isinstance(obj, dict):
        return []
    group = str(obj.get("apiVersion", "")).split("/")[0]
    if group in _PATTERN_GROUPS:
        return []
    defaults = _tekton_param_defaults(obj)
    findings = []
    for keys, image in _walk(obj, ()):
        shown = image
        match = _TEKTON_PARAM.match(image.strip())
        if match:
            name = match.group(1) or match.group(2)
            default = defaults.get(name)
            if not isinstance(default, str):
                continue  # supplied by the caller at run time; the caller's file is checked instead
            image, shown = default, f"{image} (default {default!r})"
        if not image.strip() or "$(" in image or "${" in image:
            continue  # a substitution resolved elsewhere (Tekton, Kustomize replacements)
        if not is_pinned(image):
            findings.append(Finding(RULE, keys, f"image {shown} is not pinned by digest (@sha256:<64 hex>)"))
    return findings
