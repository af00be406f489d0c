"""Gate policy: the thresholds of every gate, read from YAML and validated by a JSON Schema.

Thresholds are data, not code, so that changing one is a reviewed diff of a policy file and the
evidence can record exactly which numbers a verdict was reached with (the merged values and the
sha256 of the files they came from). A per-model policy overrides any subset of the defaults.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from sluice.yamlfile import first_schema_error, load_yaml_mapping

POLICY_DIR = Path(__file__).resolve().parent  # default.yaml and per-model <model>.yaml
SCHEMA_PATH = POLICY_DIR / "schema.json"
DEFAULT_POLICY = POLICY_DIR / "default.yaml"


@cache
def policy_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _read_policy_file(path: Path) -> tuple[dict, str]:
    doc, digest = load_yaml_mapping(path, "policy")
    first_schema_error(doc, policy_schema(), path, "policy")
    return doc, digest


def _display_path(path: Path) -> str:
    """Repo-relative when inside the repository, so evidence does not carry one machine's layout."""
    root = POLICY_DIR.parents[1]
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def _merge(base: dict, override: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def resolve_policy_path(policy_path: str | Path | None, model_name: str | None) -> Path | None:
    """An explicit path wins; else gates/gate_policy/<model>.yaml when it exists; else defaults only."""
    if policy_path:
        return Path(policy_path)
    if model_name:
        candidate = POLICY_DIR / f"{model_name}.yaml"
        if candidate.is_file():
            return candidate
    return None


def load_policy(policy_path: str | Path | None = None, model_name: str | None = None) -> dict[str, Any]:
    """Merged policy: defaults overlaid with the model's policy, plus where the values came from.

    Returns {"data": {...}, "model": {...}, "sources": [{"path", "sha256"}...]}.
    """
    defaults, default_sha = _read_policy_file(DEFAULT_POLICY)
    sources = [{"path": _display_path(DEFAULT_POLICY), "sha256": default_sha}]
    merged = {"data": defaults.get("data", {}), "model": defaults.get("model", {})}
    path = resolve_policy_path(policy_path, model_name)
    if path is not None:
        doc, sha = _read_policy_file(path)
        merged = _merge(merged, {k: doc[k] for k in ("data", "model") if k in doc})
        sources.append({"path": _display_path(path), "sha256": sha})
    merged["sources"] = sources
    return merged


def policy_record(policy: dict) -> dict:
    """What evidence stores about the policy: its sources and the effective values."""
    return {
        "sources": policy["sources"],
        "values": {k: policy[k] for k in ("data", "model") if k in policy},
    }
