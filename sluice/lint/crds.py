"""Custom resource schemas: upstream CRD manifests turned into JSON Schema with Kubernetes semantics.

A CRD's `openAPIV3Schema` is OpenAPI v3 plus Kubernetes extensions, and the API server reads it
differently from a plain JSON Schema validator: unknown fields are pruned (a strict client
rejects them) unless `x-kubernetes-preserve-unknown-fields` says otherwise, `int-or-string`
accepts both, an embedded resource must name its apiVersion and kind, and `metadata` at the root
is always an ObjectMeta. `convert()` writes those rules out explicitly so `jsonschema` enforces
what the real controller would.

The CRD files come from a directory (`--crds DIR`) or from the pinned, sha256-checked files in
the download cache (`sluice.lint.pins`); either way the index is keyed by file name and content.
Parsing the upstream CRDs costs over a second (≈10 MB of YAML), so the converted schemas are
pickled under ~/.cache/sluice/lint, one file per kind and version, keyed by the CRD files' hashes.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from sluice.atomic import replacing
from sluice.lint.core_schemas import OBJECT_META_REF
from sluice.lint.pins import Pin, Resolved

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
    source: str  # CRD file, relative to the CRD directory (or its pin name)
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


def _fingerprint(entries: list[tuple[str, str]]) -> str:
    """One key for (name, sha256) of every CRD file, and the converter that read them."""
    digest = hashlib.sha256(f"converter {CONVERTER_VERSION}\n".encode())
    for name, sha in entries:
        digest.update(f"{name}\n{sha}\n".encode())
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


def _build(directory: Path, files: Mapping[str, Path]) -> tuple[CrdIndex, dict[str, dict]]:
    index = CrdIndex(directory)
    schemas: dict[str, dict] = {}
    for rel, file in files.items():
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
    files = {str(p.relative_to(directory)): p for p in _crd_files(directory)}
    shas = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in files.items()}
    return _load(directory, files, shas)


def load_crd_files(base: Path, files: Mapping[str, Path], shas: Mapping[str, str]) -> CrdIndex:
    """The CRD index of named files whose sha256 is already known (the verified pinned files).

    `base` is where they live, for messages; `shas` must be the files' real digests (the pins
    they were checked against), so the converted schemas are reused without re-reading the YAML.
    """
    return _load(base, dict(files), dict(shas))


def _load(directory: Path, files: dict[str, Path], shas: dict[str, str]) -> CrdIndex:
    store = _cache_root() / f"crds-{_fingerprint(sorted((name, shas[name]) for name in files))}"
    index_file = store / "index.pickle"
    if index_file.is_file():
        try:
            with index_file.open("rb") as fh:
                cached: CrdIndex = pickle.load(fh)  # noqa: S301 - our own cache, keyed by content hash
            cached.directory, cached._store, cached._schemas = directory, store, {}
            return cached
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            pass  # rebuild below
    index, schemas = _build(directory, dict(sorted(files.items())))
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


@dataclass(frozen=True)
class CrdSource:
    """Where a lint run's CRDs come from: every manifest under a directory, or named verified files."""

    directory: Path  # the directory, or the download cache the pinned files live in
    files: Mapping[str, Path] | None = None  # pin name -> file; None: read the directory
    shas: Mapping[str, str] | None = None  # pin name -> the sha256 each file was verified against

    @classmethod
    def pinned(cls, resolved: Resolved, pins: tuple[Pin, ...]) -> CrdSource:
        """The CRD manifests among verified pinned files (OpenAPI documents are not CRDs)."""
        files = resolved.crd_files(pins)
        return cls(resolved.cache, files, {pin.name: pin.sha256 for pin in pins if pin.name in files})

    @classmethod
    def of(cls, crds: Path | CrdSource) -> CrdSource:
        return crds if isinstance(crds, CrdSource) else cls(Path(crds))

    def load(self) -> CrdIndex | None:
        if self.files is None:
            return load_crds(self.directory)
        return load_crd_files(self.directory, self.files, self.shas or {})
