"""What one trial measures: cross-validated score of the tuned candidate on the training split.

The data is split exactly as the pipeline splits it (same seed, same fractions) and only the
training part is searched on, with stratified k-fold cross-validation. The validation split (which
picks the pipeline's winner among candidates) and the holdout (which only the model gate sees) stay
untouched by tuning, so neither selection nor gate is judged on data the search was tuned to.

Each fold reports the running mean as an intermediate value: Optuna's MedianPruner and Katib's
medianstop both stop a trial on those, and the Katib trial prints them in the StdOut collector's
`metric=value` format.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sluice.errors import SluiceError


@dataclass(frozen=True)
class TrainingSplit:
    """The pipeline's training split of a snapshot, ready to cross-validate on."""

    frame: pd.DataFrame
    target: np.ndarray
    contract: Any  # ml.data.contract.Contract
    data_sha256: str
    base_params: dict[str, Any]  # the tuned candidate's current parameters (defaults + tuned file)
    model_type: str
    seed: int


def load_split(
    data: Path, contract_path: Path, candidate: str, params_file: Path | None = None
) -> TrainingSplit:
    """Read, type and split the snapshot once per study; refuse data that breaks its contract."""
    from ml.data.contract import load_contract, load_snapshot
    from ml.training.candidates import DEFAULT_HOLDOUT_FRACTION, DEFAULT_SEED, DEFAULT_VALIDATION_FRACTION
    from ml.training.evaluate import binary_target
    from ml.training.parameters import effective_candidates
    from ml.training.split import stratified_split

    contract = load_contract(contract_path)
    frame, problems, sha = load_snapshot(data, contract)
    if problems:
        raise SluiceError(f"{data} breaks its contract ({problems[0]}): run `sluice gate data` on it first")
    frame = frame[frame[contract.label].notna()]
    train, _, _ = stratified_split(
        frame,
        contract.label,
        seed=DEFAULT_SEED,
        validation_fraction=DEFAULT_VALIDATION_FRACTION,
        holdout_fraction=DEFAULT_HOLDOUT_FRACTION,
    )
    candidates, _ = effective_candidates(contract.name, params_file)
    cand = next(c for c in candidates if c["name"] == candidate)
    return TrainingSplit(
        frame=train,
        target=binary_target(train[contract.label], contract.positive_class),
        contract=contract,
        data_sha256=sha,
        base_params=dict(cand["params"]),
        model_type=cand["model_type"],
        seed=DEFAULT_SEED,
    )


class Stop(Exception):
    """Raised by a report callback to end a trial early (median stopping)."""


def cross_validate(
    split: TrainingSplit,
    params: dict[str, Any],
    metric: str,
    folds: int,
    report: Callable[[int, float], None] | None = None,
) -> float:
    """Mean `metric` over stratified folds; `report(step, running_mean)` after each fold may raise Stop."""
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import Pipeline

    from ml.training.candidates import build_estimator
    from ml.training.evaluate import score
    from ml.training.features import build_preprocessor

    merged = {**split.base_params, **params}
    scores: list[float] = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=split.seed)
    for step, (fit_rows, eval_rows) in enumerate(splitter.split(split.frame, split.target)):
        model = Pipeline(
            [
                ("prepare", build_preprocessor(split.contract)),
                ("model", build_estimator(split.model_type, merged, split.seed)),
            ]
        )
        model.fit(split.frame.iloc[fit_rows], split.target[fit_rows])
        held = split.frame.iloc[eval_rows]
        scores.append(float(score(model, held, split.target[eval_rows])[metric]))
        if report is not None:
            report(step, float(np.mean(scores)))
    return float(np.mean(scores))
