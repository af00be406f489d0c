"""A small Sluice model of the gate-test contract, saved as the log step saves it (onnx flavor)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ml.data.contract import coerce_to_contract, load_contract
from ml.training.candidates import build_model
from tests.gates.conftest import CONTRACT, make_frame, write_yaml
from tests.ml.serving_models import save_with_flavor


def gate_contract(tmp: Path):
    return load_contract(write_yaml(tmp / "contract.yaml", CONTRACT))


def fitted(
    contract, kind: str = "logistic_regression", params: dict | None = None, rows: int = 1500, seed: int = 11
):
    train, _ = coerce_to_contract(make_frame(rows, seed), contract)
    model = build_model(contract, kind, params or {"max_iter": 500}, seed=7)
    return model.fit(train, train["default"].astype(int).to_numpy())


def holdout(contract, rows: int = 400, seed: int = 12) -> pd.DataFrame:
    frame, _ = coerce_to_contract(make_frame(rows, seed), contract)
    return frame


def served_model_dir(tmp: Path, kind: str = "logistic_regression") -> tuple[Path, pd.DataFrame]:
    """(model directory with the onnx flavor, holdout features) for the gate-test contract."""
    contract = gate_contract(tmp)
    model = fitted(contract, kind)
    features = holdout(contract)[[c.name for c in contract.features]]
    return save_with_flavor(model, tmp / f"model-{kind}"), features
