"""The pipeline's training parameters per model: what `sluice tune` found, what training then uses.

`ml/training/tuned/<model>.yaml` overrides the parameters of named candidates; every other
candidate, and every parameter the file does not name, keeps its default from
`ml.training.candidates`. The file is machine-owned (written by `sluice tune`, committed through a
pull request like any other change) and read by `sluice run`, `sluice submit` and the rendering of
the Katib Experiment, so the laptop, the cluster pipeline and the cluster's tuning all train the
same configuration. It ships inside the package (and so inside the trainer image) on purpose: the
parameters are versioned with the code that interprets them.

Only `candidates` changes what a run trains, so only the effective candidate list enters the run
key (through the run's parameters); the `tuned` block is provenance and changing it alone retrains
nothing.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sluice.atomic import write_text
from sluice.errors import SluiceError
from sluice.yamlfile import first_schema_error, load_yaml_mapping

PARAMETERS_DIR = Path(__file__).resolve().with_name("tuned")
SCHEMA_PATH = Path(__file__).with_name("parameters.schema.json")
API_VERSION = "sluice.dev/v1"
KIND = "TrainingParameters"
HEADER = (
    "# Machine-owned: written by `sluice tune` (the best trial of a study); commit it through a pull\n"
    "# request. `sluice run`, `sluice submit` and the Katib Experiment read it: the candidates named\n"
    "# here train with these parameters (merged over the defaults in ml/training/candidates.py).\n"
)


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def default_path(model: str) -> Path:
    return PARAMETERS_DIR / f"{model}.yaml"


def load(path: str | Path, model: str | None = None) -> dict[str, Any]:
    """The validated document; SluiceError naming the field when it is malformed or for another model."""
    path = Path(path)
    doc, _ = load_yaml_mapping(path, "training parameters")
    first_schema_error(doc, schema(), path, "training parameters")
    if model is not None and doc["model"] != model:
        raise SluiceError(f"training parameters {path} are for model {doc['model']!r}, not {model!r}")
    return doc


def resolve(model: str, explicit: str | Path | None = None) -> Path | None:
    """An explicit file (which must exist), else the model's committed file when there is one."""
    if explicit:
        path = Path(explicit).resolve()
        if not path.is_file():
            raise SluiceError(f"training parameters not found: {path}")
        return path
    path = default_path(model)
    return path if path.is_file() else None


def apply_overrides(candidates: list[dict[str, Any]], overrides: dict[str, dict]) -> list[dict[str, Any]]:
    """`candidates` with each named candidate's params merged with its overrides (a new list)."""
    names = [c["name"] for c in candidates]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise SluiceError(
            f"training parameters name candidate {unknown[0]!r}, which the pipeline does not train "
            f"(candidates: {', '.join(names)})"
        )
    out = copy.deepcopy(candidates)
    for cand in out:
        cand["params"] = {**cand["params"], **overrides.get(cand["name"], {})}
    return out


def effective_candidates(model: str, explicit: str | Path | None = None) -> tuple[list[dict], Path | None]:
    """The candidate list a run of `model` trains, and the parameters file it came from (if any)."""
    from ml.training.candidates import DEFAULT_CANDIDATES, validate_candidates

    path = resolve(model, explicit)
    if path is None:
        return copy.deepcopy(DEFAULT_CANDIDATES), None
    candidates = apply_overrides(DEFAULT_CANDIDATES, load(path, model)["candidates"])
    validate_candidates(candidates)
    return candidates, path


def render(model: str, overrides: dict[str, dict], tuned: dict[str, Any]) -> str:
    """The file's bytes: fixed key order, so the same study result gives the same file."""
    document = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "model": model,
        "candidates": {name: dict(sorted(params.items())) for name, params in sorted(overrides.items())},
        "tuned": tuned,
    }
    return HEADER + yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=4096)


def write(path: str | Path, model: str, overrides: dict[str, dict], tuned: dict[str, Any]) -> Path:
    """Validate and write atomically; a document the schema refuses is never written."""
    text = render(model, overrides, tuned)
    first_schema_error(yaml.safe_load(text), schema(), Path(path), "training parameters")
    return write_text(path, text)
