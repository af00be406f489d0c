"""Katib Experiments, validated the way a strict client and Katib's webhook would.

Katib's CRDs keep the whole object open (`x-kubernetes-preserve-unknown-fields` at the root), so
the API server checks nothing. The real shape is in Katib's OpenAPI document (`katib/swagger.json`,
pinned in crd-pins.yaml; what Katib's SDK is generated from), but that document never says
`additionalProperties`, so a misspelt `spec.parallelTrails` would still pass. A strict client
(`kubectl --validate=strict`, server-side field validation on typed structs) refuses unknown
fields, and so does this: every object schema that lists `properties` and says nothing about
additional ones is closed. `Unstructured` (the trial template) stays open, and the Job inside it
is validated on its own against Kubernetes' strict batch/v1 schema, after substituting the
`${trialParameters.x}` placeholders as Katib does.

On top, the checks of Katib's admission webhook (pkg/webhook/v1beta1/experiment/validator) that a
committed manifest can fail: every `${trialParameters.x}` the template uses is declared (and every
declared one used), each trial parameter's `reference` names a search parameter (or trial
metadata), ranges are not empty, trial counts are consistent, the primary container exists.
"""

from __future__ import annotations

import copy
import functools
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from sluice.lint import core_schemas
from sluice.lint.findings import Finding
from sluice.lint.validate import schema_findings

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
SWAGGER_PIN = "katib/swagger.json"
RULE_SCHEMA = "katib-schema"
RULE_TEMPLATE = "katib-template"
_DOC = "urn:katib:swagger"
_USED = re.compile(r"\$\{trialParameters\.(.+?)\}")  # Katib's TrialTemplateParamReplaceFormatRegex
_META = re.compile(r"^\$\{trialSpec\.(.+?)\}$")  # TrialTemplateMetaReplaceFormatRegex
META_KEYS = frozenset({"Name", "Namespace", "Kind", "APIVersion", "Annotations", "Labels"})
PARAMETER_TYPES = ("int", "double", "categorical", "discrete")
DISTRIBUTIONS = ("uniform", "logUniform", "normal", "logNormal")
NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def is_experiment(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("apiVersion") == API_VERSION and obj.get("kind") == KIND


def close_schemas(node: Any) -> Any:
    """OpenAPI 3.0 schema objects → draft-4 JSON Schema, with typed objects closed to unknown fields."""
    if isinstance(node, list):
        return [close_schemas(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: close_schemas(v) for k, v in node.items()}
    if out.pop("nullable", False) is True:
        kind = out.get("type")
        out = {**out, "type": [kind, "null"]} if isinstance(kind, str) else {"anyOf": [out, {"type": "null"}]}
    preserve = out.get("x-kubernetes-preserve-unknown-fields") is True
    if isinstance(out.get("properties"), dict) and "additionalProperties" not in out and not preserve:
        out["additionalProperties"] = False
    return out


@functools.cache
def _validator(swagger: Path) -> jsonschema.Draft4Validator:
    doc = json.loads(swagger.read_text(encoding="utf-8"))
    doc = {**doc, "components": {**doc["components"], "schemas": close_schemas(doc["components"]["schemas"])}}
    registry = Registry().with_resource(_DOC, Resource(contents=doc, specification=DRAFT4))
    schema = {"$ref": f"{_DOC}#/components/schemas/v1beta1.Experiment"}
    return jsonschema.Draft4Validator(schema, registry=registry)


def experiment_findings(obj: dict, swagger: Path | None) -> list[Finding]:
    """Every finding for one Experiment; without the OpenAPI document, only the webhook's checks."""
    found: list[Finding] = []
    if swagger is not None:
        for f in schema_findings(_validator(swagger), obj, RULE_SCHEMA):
            note = " (not in Katib's API)" if "unknown field" in f.message else ""
            found.append(Finding(RULE_SCHEMA, f.keys, f.message + note))
    return found + template_findings(obj) + semantic_findings(obj) + job_findings(obj)


def _spec(obj: dict) -> dict:
    spec = obj.get("spec")
    return spec if isinstance(spec, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


TT = ("spec", "trialTemplate")


def template_findings(obj: dict) -> list[Finding]:
    """${trialParameters.x} used ⇔ declared; references name a search parameter or trial metadata."""
    spec = _spec(obj)
    template = spec.get("trialTemplate") if isinstance(spec.get("trialTemplate"), dict) else {}
    parameters = sorted(str(p.get("name")) for p in _list(spec.get("parameters")) if isinstance(p, dict))
    out: list[Finding] = []
    declared: dict[str, str] = {}
    for i, tp in enumerate(_list(template.get("trialParameters"))):
        at = (*TT, "trialParameters", i)
        name, ref = str(tp.get("name") or ""), str(tp.get("reference") or "")
        if not name or not ref or "{" in name or "}" in name:
            out.append(
                Finding(RULE_TEMPLATE, at, "a trial parameter needs a name (no braces) and a reference")
            )
            continue
        if name in declared:
            out.append(Finding(RULE_TEMPLATE, (*at, "name"), f"trial parameter {name!r} is declared twice"))
        if ref in declared.values():
            out.append(Finding(RULE_TEMPLATE, (*at, "reference"), f"reference {ref!r} is used twice"))
        declared[name] = ref
        meta = _META.match(ref)
        if meta:
            if re.sub(r"\[.*\]$", "", meta.group(1)) not in META_KEYS:
                keys = ", ".join(sorted(META_KEYS))
                out.append(
                    Finding(RULE_TEMPLATE, (*at, "reference"), f"{ref!r} is not trial metadata ({keys})")
                )
        elif ref not in parameters:
            out.append(
                Finding(
                    RULE_TEMPLATE,
                    (*at, "reference"),
                    f"reference {ref!r} is not a parameter in spec.parameters ({', '.join(parameters)})",
                )
            )
    used = set(_USED.findall(json.dumps(template.get("trialSpec") or {})))
    for name in sorted(used - set(declared)):
        out.append(
            Finding(
                RULE_TEMPLATE,
                (*TT, "trialSpec"),
                f"${{trialParameters.{name}}} is not declared in spec.trialTemplate.trialParameters",
            )
        )
    for name in sorted(set(declared) - used):
        out.append(
            Finding(
                RULE_TEMPLATE,
                (*TT, "trialParameters"),
                f"trial parameter {name!r} is never used in trialSpec",
            )
        )
    return out


def semantic_findings(obj: dict) -> list[Finding]:
    """The webhook's value checks on the search itself."""
    spec = _spec(obj)
    out: list[Finding] = []
    name = str((obj.get("metadata") or {}).get("name") or "")
    if not NAME.match(name) or len(name) > 40:
        out.append(
            Finding(RULE_TEMPLATE, ("metadata", "name"), f"{name!r}: a DNS label of at most 40 characters")
        )
    counts = {k: spec.get(k) for k in ("maxTrialCount", "parallelTrialCount", "maxFailedTrialCount")}
    for key in ("maxTrialCount", "parallelTrialCount"):
        if isinstance(counts[key], int) and counts[key] <= 0:
            out.append(Finding(RULE_TEMPLATE, ("spec", key), f"must be greater than 0, got {counts[key]}"))
    most = counts["maxTrialCount"]
    for key in ("parallelTrialCount", "maxFailedTrialCount"):
        if isinstance(counts[key], int) and isinstance(most, int) and counts[key] > most:
            out.append(
                Finding(RULE_TEMPLATE, ("spec", key), f"{counts[key]} is more than maxTrialCount {most}")
            )
    objective = spec.get("objective") if isinstance(spec.get("objective"), dict) else {}
    if objective.get("type") not in ("minimize", "maximize"):
        out.append(Finding(RULE_TEMPLATE, ("spec", "objective", "type"), "must be minimize or maximize"))
    if not objective.get("objectiveMetricName"):
        out.append(Finding(RULE_TEMPLATE, ("spec", "objective"), "objectiveMetricName is required"))
    if not _list(spec.get("parameters")):
        out.append(
            Finding(RULE_TEMPLATE, ("spec", "parameters"), "at least one search parameter is required")
        )
    for i, p in enumerate(_list(spec.get("parameters"))):
        out += _parameter_findings(p if isinstance(p, dict) else {}, ("spec", "parameters", i))
    return out + _container_findings(spec)


def _parameter_findings(p: dict, at: tuple) -> list[Finding]:
    out: list[Finding] = []
    kind = p.get("parameterType")
    feasible = p.get("feasibleSpace") if isinstance(p.get("feasibleSpace"), dict) else {}
    if kind not in PARAMETER_TYPES:
        out.append(
            Finding(
                RULE_TEMPLATE, (*at, "parameterType"), f"{kind!r} is not one of {', '.join(PARAMETER_TYPES)}"
            )
        )
    distribution = feasible.get("distribution")
    if distribution and distribution not in DISTRIBUTIONS:
        out.append(
            Finding(
                RULE_TEMPLATE,
                (*at, "feasibleSpace", "distribution"),
                f"{distribution!r} is not one of {DISTRIBUTIONS}",
            )
        )
    if kind in ("int", "double"):
        try:
            low, high = float(feasible["min"]), float(feasible["max"])
        except (KeyError, TypeError, ValueError):
            out.append(
                Finding(RULE_TEMPLATE, (*at, "feasibleSpace"), f"numeric min and max are required for {kind}")
            )
        else:
            if low >= high:
                out.append(
                    Finding(
                        RULE_TEMPLATE, (*at, "feasibleSpace"), f"empty range: min {low:g} >= max {high:g}"
                    )
                )
    if kind in ("categorical", "discrete") and not _list(feasible.get("list")):
        out.append(Finding(RULE_TEMPLATE, (*at, "feasibleSpace", "list"), f"a {kind} parameter needs a list"))
    return out


def _job(spec: dict) -> dict:
    template = spec.get("trialTemplate") if isinstance(spec.get("trialTemplate"), dict) else {}
    trial = template.get("trialSpec")
    return trial if isinstance(trial, dict) else {}


def _container_findings(spec: dict) -> list[Finding]:
    template = spec.get("trialTemplate") if isinstance(spec.get("trialTemplate"), dict) else {}
    trial = _job(spec)
    meta = trial.get("metadata") if isinstance(trial.get("metadata"), dict) else {}
    out: list[Finding] = []
    if meta.get("name") or meta.get("namespace"):
        out.append(
            Finding(RULE_TEMPLATE, (*TT, "trialSpec", "metadata"), "name and namespace must be omitted")
        )
    pod = (((trial.get("spec") or {}).get("template") or {}).get("spec") or {}) if trial else {}
    names = [c.get("name") for c in _list(pod.get("containers")) if isinstance(c, dict)]
    primary = template.get("primaryContainerName")
    if not primary:
        out.append(Finding(RULE_TEMPLATE, TT, "primaryContainerName is required"))
    elif trial.get("kind") == "Job" and primary not in names:
        out.append(
            Finding(
                RULE_TEMPLATE,
                (*TT, "primaryContainerName"),
                f"no container named {primary!r} in the trial Job",
            )
        )
    return out


def job_findings(obj: dict) -> list[Finding]:
    """The trial Job against Kubernetes' strict batch/v1 schema, placeholders substituted as Katib does."""
    trial = _job(_spec(obj))
    if (trial.get("apiVersion"), trial.get("kind")) != ("batch/v1", "Job"):
        return []
    filled = json.loads(_USED.sub("x", json.dumps(trial)))
    filled = copy.deepcopy(filled)
    filled.setdefault("metadata", {})["name"] = "trial"  # Katib names each trial's Job
    validator = core_schemas.core_validator("batch/v1", "Job")
    if validator is None:
        return []
    return [
        Finding(RULE_SCHEMA, (*TT, "trialSpec", *f.keys), f"trialSpec: {f.message}")
        for f in schema_findings(validator, filled, RULE_SCHEMA)
    ]
