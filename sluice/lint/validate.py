"""Which schema an object answers to, and what it says about the object.

Dispatch on (apiVersion, kind): Kubernetes built-ins → kubernetes-validate's strict schemas;
custom kinds → the converted upstream CRDs; `sluice.dev/*` → the JSON Schemas this repo ships
(found by their `apiVersion`/`kind` constants, so a new one is picked up without code changes);
kustomize's own files → a structural schema. Anything else is an error: an apiVersion typo
that is skipped is a deployment that fails at sync time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import best_match

from sluice.lint import core_schemas, kustomize
from sluice.lint.crds import CrdIndex
from sluice.lint.findings import Finding, dotted, short

_JSON_TYPES = {
    dict: "object",
    list: "array",
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    type(None): "null",
}
MAX_ERRORS_PER_OBJECT = 20


def _type_name(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _describe(error: jsonschema.ValidationError) -> list[tuple[tuple, str]]:
    """(field path, message) pairs for one schema error, worded the way kubectl users expect."""
    keys = tuple(error.absolute_path)
    where = dotted(keys)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = (error.schema.get("properties") or {}) if isinstance(error.schema, dict) else {}
        extra = [key for key in error.instance if key not in known]
        return [((*keys, key), f"{dotted((*keys, key))}: unknown field '{key}'") for key in extra] or [
            (keys, f"{where}: {error.message}")
        ]
    if error.validator == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        wanted = [w for w in wanted if w != "null"] or wanted
        return [
            (
                keys,
                f"{where}: expected {' or '.join(wanted)}, got {_type_name(error.instance)} "
                f"{short(error.instance)}",
            )
        ]
    if error.validator == "required":
        missing = error.message.split("'")[1] if error.message.count("'") >= 2 else error.message
        return [(keys, f"{where}: missing required field '{missing}'")]
    if error.validator == "enum":
        return [(keys, f"{where}: {short(error.instance)} is not one of {short(error.validator_value, 120)}")]
    if error.validator in ("anyOf", "oneOf") and error.context:
        deeper = best_match(error.context)
        if deeper is not None and tuple(deeper.absolute_path) != keys:
            return _describe(deeper)
        if deeper is not None and deeper.validator in ("required", "type", "enum"):
            return _describe(deeper)
    message = error.message
    if len(message) > 160:
        message = message.replace(repr(error.instance), short(error.instance))
    if len(message) > 200:
        message = message[:197] + "..."
    return [(keys, f"{where}: {message}")]


def schema_findings(validator: jsonschema.protocols.Validator, obj: Any, rule: str) -> list[Finding]:
    out: list[Finding] = []
    seen: set[tuple] = set()
    for error in validator.iter_errors(obj):
        for keys, message in _describe(error):
            if (keys, message) in seen:
                continue
            seen.add((keys, message))
            out.append(Finding(rule, keys, message))
    out.sort(key=lambda f: [str(k) for k in f.keys])
    if len(out) > MAX_ERRORS_PER_OBJECT:
        dropped = len(out) - MAX_ERRORS_PER_OBJECT
        out = out[:MAX_ERRORS_PER_OBJECT]
        out.append(Finding(rule, (), f"... and {dropped} more schema errors in this object"))
    return out


def prune_nulls(node: Any) -> Any:
    """What the API server does with `field: null` in a custom resource: drops it before validating."""
    if isinstance(node, dict):
        return {k: prune_nulls(v) for k, v in node.items() if v is not None}
    if isinstance(node, list):
        return [prune_nulls(v) for v in node]
    return node


@dataclass
class Schemas:
    """Everything `validate_object` needs to know, resolved once per run."""

    crds: CrdIndex | None
    crds_dir: Path
    sluice: dict[tuple[str, str], Path] = field(default_factory=dict)
    used: dict[str, set[str]] = field(default_factory=dict)  # source → kinds validated (for --explain)
    memo: dict[str, list[Finding]] = field(default_factory=dict, repr=False)  # object JSON → findings
    # Katib's OpenAPI document: Experiments are validated against it, closed (sluice.lint.katib).
    katib_swagger: Path | None = None
    _validators: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def crd_validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        key = (api_version, kind)
        if key not in self._validators:
            schema = self.crds.schema(api_version, kind) if self.crds else None
            self._validators[key] = (
                None
                if schema is None
                else jsonschema.Draft202012Validator(schema, registry=core_schemas.registry())
            )
        return self._validators[key]

    def sluice_validator(self, api_version: str, kind: str) -> jsonschema.protocols.Validator | None:
        path = self.sluice.get((api_version, kind))
        if path is None:
            return None
        key = ("sluice", str(path))
        if key not in self._validators:
            schema = json.loads(path.read_text(encoding="utf-8"))
            cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
            self._validators[key] = cls(schema)
        return self._validators[key]


def _consts(schema: dict, prop: str) -> list[str]:
    node = (schema.get("properties") or {}).get(prop) or {}
    if "const" in node:
        return [node["const"]]
    return [v for v in node.get("enum", ()) if isinstance(v, str)]


def discover_sluice_schemas(root: Path) -> dict[tuple[str, str], Path]:
    """Our own YAML kinds: each `*.schema.json` under sluice/, ml/ and gates/ pinning apiVersion and kind."""
    found: dict[tuple[str, str], Path] = {}
    for top in ("sluice", "ml", "gates"):
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.schema.json")):
            try:
                schema = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                continue
            if not isinstance(schema, dict):
                continue
            for api_version in _consts(schema, "apiVersion"):
                if not api_version.startswith("sluice.dev/"):
                    continue  # e.g. lint's own kustomization schema: dispatched by group, not here
                for kind in _consts(schema, "kind"):
                    found.setdefault((api_version, kind), path)
    return found


def _group(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def _unknown(schemas: Schemas, api_version: str, kind: str) -> Finding:
    core = core_schemas.core_kinds()
    crd_kinds = schemas.crds.kinds if schemas.crds else {}
    group = _group(api_version)
    same_kind = sorted(api for api, k in [*core, *crd_kinds] if k == kind and _group(api) == group)
    if same_kind:
        return Finding(
            "k8s-unknown-api-version",
            ("apiVersion",),
            f"apiVersion {api_version} is not known for kind {kind} (known: {', '.join(same_kind)})",
        )
    core_groups = {_group(api) for api, _ in core}
    crd_groups = {_group(api) for api, _ in crd_kinds}
    if group in core_groups or group in crd_groups:
        versions = {api for api, _ in [*core, *crd_kinds] if _group(api) == group}
        if api_version not in versions:
            return Finding(
                "k8s-unknown-api-version",
                ("apiVersion",),
                f"apiVersion {api_version} is not known (group {group or 'core'} serves "
                f"{', '.join(sorted(versions))})",
            )
        return Finding("k8s-unknown-kind", ("kind",), f"kind {kind} is not defined in {api_version}")
    if schemas.crds is None:
        return Finding(
            "crd-missing",
            ("apiVersion",),
            f"cannot validate {kind} ({api_version}): CRD directory {schemas.crds_dir} does not exist "
            "(pass --crds DIR or set SLUICE_CRDS_DIR; see `sluice lint --explain`)",
        )
    return Finding(
        "k8s-unknown-kind",
        ("apiVersion",),
        f"unknown kind {kind} in {api_version}: not a Kubernetes {core_schemas.KUBERNETES_VERSION} "
        f"built-in and no CRD in {schemas.crds_dir} defines it",
    )


def validate_object(obj: dict, schemas: Schemas) -> list[Finding]:
    """Schema findings for one object that has apiVersion and kind."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str) or not api_version or not kind:
        return [Finding("k8s-unknown-kind", (), "apiVersion and kind must both be non-empty strings")]
    group = _group(api_version)
    if group == "kustomize.config.k8s.io":
        return validate_kustomization(obj)
    if group == "sluice.dev":
        validator = schemas.sluice_validator(api_version, kind)
        if validator is None:
            return [
                Finding(
                    "sluice-schema",
                    ("kind",),
                    f"no JSON schema in ml/ or gates/ declares {api_version} {kind}; not validated",
                    "warning",
                )
            ]
        schemas.used.setdefault(str(schemas.sluice[(api_version, kind)]), set()).add(f"{kind} {api_version}")
        return schema_findings(validator, obj, "sluice-schema")
    core = core_schemas.core_validator(api_version, kind)
    if core is not None:
        schemas.used.setdefault("kubernetes", set()).add(f"{kind} {api_version}")
        return [*_name_findings(obj), *schema_findings(core, obj, "k8s-schema")]
    entry = schemas.crds.kinds.get((api_version, kind)) if schemas.crds else None
    if entry is not None:
        if not entry.served:
            return [
                Finding(
                    "k8s-unknown-api-version",
                    ("apiVersion",),
                    f"{api_version} {kind} is defined but not served by its CRD ({entry.source})",
                )
            ]
        validator = schemas.crd_validator(api_version, kind)
        schemas.used.setdefault(entry.source, set()).add(f"{kind} {api_version}")
        found = [*_name_findings(obj), *schema_findings(validator, prune_nulls(obj), "crd-schema")]
        return found + _katib_findings(obj, schemas)
    return [_unknown(schemas, api_version, kind)]


def _katib_findings(obj: dict, schemas: Schemas) -> list[Finding]:
    """Katib's CRD validates nothing (it is open): Experiments also answer to its closed OpenAPI schema."""
    from sluice.lint import katib

    if not katib.is_experiment(obj):
        return []
    found = katib.experiment_findings(prune_nulls(obj), schemas.katib_swagger)
    if schemas.katib_swagger is None:
        found.append(
            Finding(
                "crd-missing",
                ("apiVersion",),
                f"{katib.SWAGGER_PIN} is not available: the Experiment was checked against Katib's webhook "
                "rules only, not its API schema",
                "warning",
            )
        )
    else:
        schemas.used.setdefault(katib.SWAGGER_PIN, set()).add(f"{katib.KIND} {katib.API_VERSION}")
    return found


def _name_findings(obj: dict) -> list[Finding]:
    meta = obj.get("metadata")
    if str(obj.get("kind", "")).endswith("List"):
        return []
    if not isinstance(meta, dict) or not (meta.get("name") or meta.get("generateName")):
        return [Finding("k8s-schema", ("metadata",), "metadata.name (or generateName) is required")]
    return []


def validate_kustomization(data: Any) -> list[Finding]:
    findings = schema_findings(
        kustomize.structure_validator(), data if data is not None else {}, "kustomize-structure"
    )
    for key, hint in kustomize.deprecated_fields(data):
        findings.append(
            Finding(
                "kustomize-structure", (key,), f"'{key}' is deprecated in kustomize v5; {hint}", "warning"
            )
        )
    return findings
