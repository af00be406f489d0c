"""A search space, declared once per model in `ml/tuning/spaces/<model>.yaml`.

One file says what is searched (a candidate's parameters, their ranges and scales), what is
optimised (metric, direction), and what the search may spend (trials, parallelism, failures,
early stopping, seed). `sluice tune` runs it on this machine with Optuna and `sluice tune --katib`
renders the same declaration as a Katib Experiment, so the two cannot disagree about the space.

Bad input is one line naming the field: the JSON Schema catches shapes and types (a budget below
1 is `budget.trials: 0 is less than the minimum of 1`), and `check()` the meaning: an empty range,
a parameter the candidate's estimator does not have, a failure limit above the budget.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError
from sluice.yamlfile import load_yaml_mapping

SPACES_DIR = Path(__file__).resolve().with_name("spaces")
SCHEMA_PATH = Path(__file__).with_name("search-space.schema.json")
DEFAULT_FOLDS = 3
DEFAULT_STARTUP_TRIALS = 5
ALGORITHM = "multivariate-tpe"


@dataclass(frozen=True)
class Parameter:
    name: str
    type: str  # int | float | categorical
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple = ()

    def parse(self, text: str) -> Any:
        """A value as Katib passes it (a string on the command line) → the parameter's type."""
        if self.type == "int":
            return int(float(text))
        if self.type == "float":
            return float(text)
        for choice in self.choices:
            if str(choice) == text:
                return choice
        raise SluiceError(f"{self.name}={text!r} is not one of {', '.join(map(str, self.choices))}")


@dataclass(frozen=True)
class SearchSpace:
    model: str
    candidate: str
    metric: str
    direction: str
    folds: int
    parameters: tuple[Parameter, ...]
    trials: int
    parallel: int
    max_failed: int
    seed: int
    startup_trials: int
    early_stopping: dict[str, int] | None
    sha256: str  # of the file's bytes: which declaration a study (and a rendered Experiment) ran
    path: Path = field(compare=False)

    def parameter(self, name: str) -> Parameter:
        return next(p for p in self.parameters if p.name == name)

    def parse_assignments(self, assignments: dict[str, str]) -> dict[str, Any]:
        """`name=value` strings from a Katib trial → typed values; every parameter exactly once."""
        names = {p.name for p in self.parameters}
        unknown = sorted(set(assignments) - names)
        if unknown:
            raise SluiceError(
                f"unknown parameter {unknown[0]!r} (the search space has {', '.join(sorted(names))})"
            )
        missing = sorted(names - set(assignments))
        if missing:
            raise SluiceError(f"no value for parameter {missing[0]!r}")
        return {name: self.parameter(name).parse(text) for name, text in assignments.items()}


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def default_path(model: str) -> Path:
    return SPACES_DIR / f"{model}.yaml"


def _field(error_path: list) -> str:
    parts = []
    for part in error_path:
        parts.append(f"[{part}]" if isinstance(part, int) else f".{part}")
    return "".join(parts).lstrip(".") or "(top level)"


def _schema_error(doc: dict, path: Path) -> None:
    import jsonschema

    errors = sorted(
        jsonschema.Draft202012Validator(schema()).iter_errors(doc),
        key=lambda e: list(map(str, e.absolute_path)),
    )
    if errors:
        first = min(errors, key=lambda e: (len(e.absolute_path) == 0, list(map(str, e.absolute_path))))
        raise SluiceError(f"search space {path}: {_field(list(first.absolute_path))}: {first.message}")


def _parameter(raw: dict) -> Parameter:
    if raw["type"] == "categorical":
        return Parameter(raw["name"], "categorical", choices=tuple(raw["choices"]))
    return Parameter(
        raw["name"],
        raw["type"],
        low=raw["low"],
        high=raw["high"],
        step=raw.get("step"),
        log=raw.get("scale", "linear") == "log",
    )


def load(path: str | Path) -> SearchSpace:
    """Parse and check a search space file; SluiceError (one line, naming the field) otherwise."""
    path = Path(path)
    doc, digest = load_yaml_mapping(path, "search space")
    _schema_error(doc, path)
    budget = doc["budget"]
    sampler = doc.get("sampler") or {}
    space = SearchSpace(
        model=doc["model"],
        candidate=doc["candidate"],
        metric=doc["objective"]["metric"],
        direction=doc["objective"]["direction"],
        folds=doc["objective"].get("folds", DEFAULT_FOLDS),
        parameters=tuple(_parameter(p) for p in doc["parameters"]),
        trials=budget["trials"],
        parallel=budget.get("parallel", 1),
        max_failed=budget.get("max_failed", 3),
        seed=sampler.get("seed", _default_seed()),
        startup_trials=sampler.get("startup_trials", DEFAULT_STARTUP_TRIALS),
        early_stopping=doc.get("early_stopping"),
        sha256=digest,
        path=path,
    )
    check(space)
    return space


def _default_seed() -> int:
    from ml.training.candidates import DEFAULT_SEED

    return DEFAULT_SEED


def check(space: SearchSpace) -> None:
    """The meaning the schema cannot express; the first problem, naming its field."""
    where = f"search space {space.path}"
    seen: set[str] = set()
    estimator = _estimator_parameters(space, where)
    for i, p in enumerate(space.parameters):
        at = f"{where}: parameters[{i}]"
        if p.name in seen:
            raise SluiceError(f"{at}.name: {p.name!r} is declared twice")
        seen.add(p.name)
        if p.name not in estimator:
            raise SluiceError(
                f"{at}.name: unknown parameter {p.name!r} for candidate {space.candidate!r} "
                f"(its estimator takes: {', '.join(sorted(estimator))})"
            )
        _check_range(p, at)
    if space.parallel > space.trials:
        raise SluiceError(
            f"{where}: budget.parallel: {space.parallel} is more than budget.trials {space.trials}"
        )
    if space.max_failed > space.trials:
        raise SluiceError(
            f"{where}: budget.max_failed: {space.max_failed} is more than budget.trials {space.trials}"
        )
    stop = space.early_stopping
    if stop and stop.get("start_step", 1) > space.folds:
        raise SluiceError(
            f"{where}: early_stopping.start_step: {stop['start_step']} is more than the {space.folds} "
            "intermediate values a trial reports (objective.folds)"
        )


def _check_range(p: Parameter, at: str) -> None:
    if p.type == "categorical":
        return
    if p.low is None or p.high is None or p.low >= p.high:
        raise SluiceError(f"{at}: empty range: low {p.low} must be below high {p.high}")
    if p.type == "int" and (p.low != int(p.low) or p.high != int(p.high)):
        raise SluiceError(f"{at}: an int parameter needs whole-number low and high, got {p.low}..{p.high}")
    if p.log and p.low <= 0:
        raise SluiceError(f"{at}.scale: a log scale needs low > 0, got {p.low}")
    if p.log and p.step is not None:
        raise SluiceError(f"{at}.step: a log scale takes no step (Katib and Optuna sample it continuously)")
    if p.step is not None:
        if p.type == "int" and p.step != int(p.step):
            raise SluiceError(f"{at}.step: an int parameter needs a whole-number step, got {p.step}")
        span = (p.high - p.low) / p.step
        if abs(span - round(span)) > 1e-9:
            raise SluiceError(
                f"{at}.step: high - low ({p.high - p.low:g}) is not a multiple of step {p.step:g}: "
                "Optuna would silently lower high, Katib would not"
            )


def _estimator_parameters(space: SearchSpace, where: str) -> set[str]:
    """The parameter names the tuned candidate's estimator accepts: the names a parameter may have."""
    from ml.training.candidates import DEFAULT_CANDIDATES, build_estimator

    cand = next((c for c in DEFAULT_CANDIDATES if c["name"] == space.candidate), None)
    if cand is None:
        names = ", ".join(c["name"] for c in DEFAULT_CANDIDATES)
        raise SluiceError(f"{where}: candidate: {space.candidate!r} is not a pipeline candidate ({names})")
    # random_state is the run's seed, never searched.
    return set(build_estimator(cand["model_type"], {}, 0).get_params()) - {"random_state"}


def study_fingerprint(space: SearchSpace, *parts: str) -> str:
    """A short name for (this declaration, these inputs): a changed space or snapshot is a new study."""
    digest = hashlib.sha256("\0".join((space.sha256, *parts)).encode()).hexdigest()
    return digest[:12]
