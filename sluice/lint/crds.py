"""Custom resource schemas: upstream CRD manifests turned into JSON Schema with Kubernetes semantics.

A CRD's `openAPIV3Schema` is OpenAPI v3 plus Kubernetes extensions, and the API server reads it
differently from a plain JSON Schema validator: unknown fields are pruned (a strict client
rejects them) unless `x-kubernetes-preserve-unknown-fields` says otherwise, `int-or-string`
accepts both, an embedded resource must name its apiVersion and kind, and `metadata` at the root
is always an ObjectMeta. `convert()` writes those rules out explicitly so `jsonschema` enforces
what the real controller would.

Parsing the upstream CRDs costs over a second (≈10 MB of YAML), so the converted schemas are
pickled under ~/.cache/sluice, one file per kind and version, keyed by the CRD files' hashes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.atomic import replacing
from sluice.lint.core_schemas import OBJECT_META_REF

# Bump when convert() changes meaning, so stale caches are not reused.
CONVERTER_VERSION = "3"

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

# Value keywords whose meaning is the same in OpenAPI v3 and JSON Schema 2020-12.
_SAME_KEYWORDS = (
    "enum",
    "required",
    "minimum",
    "maximum",
    "minLength",
    "maxLength",
    "minItems",
    "maxItems",
    "uniqueItems",
    "multipleOf",
    "minProperties",
    "maxProperties",
)


def convert(node: Any, structural: bool = True, root: bool = False) -> dict[str, Any]:
    """One OpenAPI v3 schema node → JSON Schema, applying the API server's structural rules.

    `structural` is False inside allOf/anyOf/oneOf/not: those are value validations layered on
    the structural node, so they must not add their own unknown-field bans.
    """
    if not isinstance(node, dict):
        return {}
    out: dict[str, Any] = {}
    preserve = node.get("x-kubernetes-preserve-unknown-fields") is True
    for key in _SAME_KEYWORDS:
        if key in node:
            out[key] = node[key]
    if "type" in node:
        out["type"] = node["type"]
    if node.get("x-kubernetes-int-or-string") is True:
        out["type"] = ["integer", "string"]
    if isinstance(node.get("pattern"), str):
        try:
            re.compile(node["pattern"])
            out["pattern"] = node["pattern"]
        except re.error:
            pass  # a Go (RE2) construct Python lacks: unenforceable here, better silent than wrong
    for bound in ("Minimum", "Maximum"):
        # OpenAPI v3.0 spells exclusive bounds as a flag on minimum/maximum.
        if node.get(f"exclusive{bound}") is True and bound.lower() in node:
            out[f"exclusive{bound}"] = out.pop(bound.lower())
    if isinstance(node.get("properties"), dict):
        out["properties"] = {name: convert(sub, structural) for name, sub in node["properties"].items()}
    if isinstance(node.get("items"), dict):
        out["items"] = convert(node["items"], structural)
    extra = node.get("additionalProperties")
    if isinstance(extra, bool):
        out["additionalProperties"] = extra
    elif isinstance(extra, dict):
        out["additionalProperties"] = convert(extra, structural)
    for combinator in ("allOf", "anyOf", "oneOf"):
        if isinstance(node.get(combinator), list):
            out[combinator] = [convert(sub, structural=False) for sub in node[combinator]]
    if isinstance(node.get("not"), dict):
        out["not"] = convert(node["not"], structural=False)

    if node.get("x-kubernetes-embedded-resource") is True or root:
        props = out.setdefault("properties", {})
        props["apiVersion"] = {"type": "string"}
        props["kind"] = {"type": "string"}
        props["metadata"] = {"$ref": OBJECT_META_REF}
        if not root:
            out["required"] = sorted({*out.get("required", ()), "apiVersion", "kind"})
    if structural and "properties" in out and not preserve and "additionalProperties" not in node:
        out["additionalProperties"] = False
    return out


@dataclass(frozen=True)
class CrdKind:
    api_version: str
    kind: str
    served: bool
    source: str  # CRD file, relative to the CRD directory
    cache_name: str


@dataclass
class CrdIndex:
    """What a CRD directory defines; schemas are loaded per kind on first use."""

    directory: Path
    kinds: dict[tuple[str, str], CrdKind] = field(default_factory=dict)
    files: dict[str, list[str]] = field(default_factory=dict)  # file → ["Kind apiVersion", …]
    problems: list[str] = field(default_factory=list)  # CRD files we could not read
    _schemas: dict[str, dict] = field(default_factory=dict, repr=False)
    _store: Path | None = None

    @property
    def groups(self) -> set[str]:
        return {api.split("/")[0] for api, _ in self.kinds if "/" in api}

    def schema(self, api_version: str, kind: str) -> dict | None:
        entry = self.kinds.get((api_version, kind))
        if entry is None:
            return None
        if entry.cache_name not in self._schemas and self._store is not None:
            with (self._store / entry.cache_name).open("rb") as fh:
                self._schemas[entry.cache_name] = pickle.load(fh)  # noqa: S301 - our own cache
        return self._schemas.get(entry.cache_name)


def _crd_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def _cache_root() -> Path:
    env = os.environ.get("SLUICE_LINT_CACHE")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sluice" / "lint"


def _fingerprint(directory: Path, files: list[Path]) -> str:
    digest = hashlib.sha256(f"converter {CONVERTER_VERSION}\n".encode())
    for file in files:
        digest.update(f"{file.relative_to(directory)}\n".encode())
        digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()[:32]


def _expand_lists(docs: list[Any]) -> list[Any]:
    """`kubectl get crd … -o yaml` writes one `kind: List`; release manifests hold many objects."""
    out: list[Any] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List" and isinstance(doc.get("items"), list):
            out.extend(doc["items"])
        else:
            out.append(doc)
    return out


def _build(directory: Path, files: list[Path]) -> tuple[CrdIndex, dict[str, dict]]:
    index = CrdIndex(directory)
    schemas: dict[str, dict] = {}
    for file in files:
        rel = str(file.relative_to(directory))
        try:
            docs = list(yaml.load_all(file.read_text(encoding="utf-8"), Loader=_Loader))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            index.problems.append(f"{rel}: cannot parse: {str(exc).splitlines()[0]}")
            continue
        for doc in _expand_lists(docs):
            if not isinstance(doc, dict) or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc.get("spec") or {}
            group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
            for version in spec.get("versions") or ():
                api_version = f"{group}/{version.get('name')}"
                raw = (version.get("schema") or {}).get("openAPIV3Schema")
                cache_name = re.sub(r"[^A-Za-z0-9.]+", "_", f"{api_version}_{kind}") + ".pickle"
                schemas[cache_name] = convert(raw or {"type": "object"}, root=True)
                index.kinds[(api_version, kind)] = CrdKind(
                    api_version, kind, bool(version.get("served", True)), rel, cache_name
                )
                index.files.setdefault(rel, []).append(f"{kind} {api_version}")
    return index, schemas


def _atomic_pickle(obj: Any, target: Path) -> None:
    with replacing(target) as fh:
        pickle.dump(obj, fh, protocol=pickle.HIGHEST_PROTOCOL)


def load_crds(directory: Path) -> CrdIndex | None:
    """The CRD index of `directory` (None if it does not exist), from cache when unchanged."""
    if not directory.is_dir():
        return None
    files = _crd_files(directory)
    store = _cache_root() / f"crds-{_fingerprint(directory, files)}"
    index_file = store / "index.pickle"
    if index_file.is_file():
        try:
            with index_file.open("rb") as fh:
                cached: CrdIndex = pickle.load(fh)  # noqa: S301 - our own cache, keyed by content hash
            cached.directory, cached._store, cached._schemas = directory, store, {}
            return cached
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass  # rebuild below
    index, schemas = _build(directory, files)
    index._schemas = schemas
    try:
        store.mkdir(parents=True, exist_ok=True)
        for name, schema in schemas.items():
            _atomic_pickle(schema, store / name)
        # The index goes last: its presence means every schema file beside it is complete.
        _atomic_pickle(CrdIndex(directory, index.kinds, index.files, index.problems), index_file)
    except OSError:
        pass  # an unwritable cache only costs time
    return index
