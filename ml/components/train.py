"""Train step: fit one candidate (preprocessing included), save it, score it on validation."""

from __future__ import annotations

import time

from ml.components.artifacts import only_file
from ml.components.markers import step
from ml.training.persist import save_model


def train_and_evaluate(
    contract_dir: str,
    train_dir: str,
    validation_dir: str,
    candidate: dict,
    seed: int,
    model_dir: str,
) -> dict:
    """Fit one candidate on the train split, save it, and score it on the validation split.

    The fitted object is scored in memory; the saved bytes are what `select` and `log` read,
    and `log` scores the winner again from them on the holdout.
    """
    import pandas as pd

    from ml.data.contract import load_contract
    from ml.training.candidates import build_model, validate_candidates
    from ml.training.evaluate import binary_target, score

    with step("train", candidate=candidate["name"]) as report:
        validate_candidates([candidate])
        contract = load_contract(only_file(contract_dir))
        frame = pd.read_parquet(only_file(train_dir, "*.parquet"))
        model = build_model(contract, candidate["model_type"], candidate["params"], seed)
        fit_started = time.perf_counter()
        model.fit(frame, binary_target(frame[contract.label], contract.positive_class))
        report["fit_seconds"] = round(time.perf_counter() - fit_started, 3)
        save_model(model, model_dir)
        validation = pd.read_parquet(only_file(validation_dir, "*.parquet"))
        metrics = score(model, validation, binary_target(validation[contract.label], contract.positive_class))
        report["metrics"] = {k: round(metrics[k], 4) for k in ("accuracy", "f1", "roc_auc")}
    return {
        "name": candidate["name"],
        "model_type": candidate["model_type"],
        "params": candidate["params"],
        "metrics": metrics,
    }
