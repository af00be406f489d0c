"""Demo-slice models of the three candidate kinds, fitted with the project's own builder.

What is exported in these tests is therefore exactly what `sluice run` registers. Shared by the
serving tests (tests/ml) and the gate's parity and latency tests (tests/gates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.data.contract import load_contract, load_snapshot
from ml.training.candidates import DEFAULT_CANDIDATES, build_model
from ml.training.persist import SKOPS_TRUSTED_TYPES
from ml.training.split import stratified_split

KINDS = ("logistic_regression", "decision_tree", "random_forest")


def split_demo(demo_slice: Any) -> tuple[Any, Any, Any]:
    """(contract, train, holdout) of the seeded demo slice."""
    contract = load_contract(demo_slice.contract)
    frame, problems, _ = load_snapshot(demo_slice.current, contract)
    assert not problems, problems
    train, _, holdout = stratified_split(
        frame, contract.label, seed=7, validation_fraction=0.2, holdout_fraction=0.3
    )
    return contract, train, holdout


def fit_kind(contract: Any, train: Any, kind: str, **overrides: Any) -> Any:
    """A fitted candidate of `kind` (the default parameters, a smaller forest unless overridden)."""
    params = {c["model_type"]: dict(c["params"]) for c in DEFAULT_CANDIDATES}[kind]
    if kind == "random_forest":
        params["n_estimators"] = 20
    params.update(overrides)
    model = build_model(contract, kind, params, seed=7)
    return model.fit(train, train[contract.label].astype(int).to_numpy())


def save_with_flavor(model: Any, path: Path) -> Path:
    """An MLflow model directory as the log step writes it: sklearn (skops) plus the onnx flavor."""
    from ml.components.log import model_requirements
    from ml.serving.export import SklearnWithOnnx

    SklearnWithOnnx.save_model(
        str(path), model, serialization_format="skops", skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
        pip_requirements=model_requirements(),  # explicit: MLflow's inference imports the model (~15 s)
    )  # fmt: skip
    return path
