"""Kubernetes' own schemas for the built-in kinds, from the installed `kubernetes-validate` data.

We pin one Kubernetes version (the one our kubectl speaks) and use the package's *strict*
variant, whose objects carry `additionalProperties: false` — the equivalent of
`kubectl apply --validate=strict`. The definitions file is loaded once (≈15 ms) and every kind is
validated through a `$ref` into it, so nothing is shelled out and nothing copied into the repo.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource

KUBERNETES_VERSION = "1.32"
_VARIANT = f"v{KUBERNETES_VERSION}.0-local-strict"
DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
OBJECT_META_REF = f"{DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


def package_version() -> str:
    return importlib.metadata.version("kubernetes-validate")


def definitions_path() -> Path:
    import kubernetes_validate  # only for its data directory

    return (
        Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema" / _VARIANT / "_definitions.json"
    )


@functools.cache
def _definitions() -> dict[str, Any]:
    path = definitions_path()
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        from sluice.errors import SluiceError

        raise SluiceError(
            f"kubernetes-validate {package_version()} has no schemas for Kubernetes {KUBERNETES_VERSION} "
            f"({path} missing)"
        ) from exc


@functools.cache
def registry() -> Registry:
    """A referencing registry holding the core definitions (CRD schemas point into it for metadata)."""
    return Registry().with_resource(DEFINITIONS_ID, Resource.from_contents(_definitions()))


@functools.cache
def core_kinds() -> dict[tuple[str, str], str]:
    """(apiVersion, kind) → definition name, from each definition's group-version-kind marker."""
    index: dict[tuple[str, str], str] = {}
    for name, schema in _definitions()["$defs"].items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            api_version = f"{gvk['group']}/{gvk['version']}" if gvk["group"] else gvk["version"]
            # Meta types (DeleteOptions, WatchEvent …) list every group; the real kind wins.
            index.setdefault((api_version, gvk["kind"]), name)
    return index


@functools.cache
def core_validator(api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
    name = core_kinds().get((api_version, kind))
    if name is None:
        return None
    schema = {"$ref": f"{DEFINITIONS_ID}#/$defs/{name}"}
    return jsonschema.Draft202012Validator(schema, registry=registry())
