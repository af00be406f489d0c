"""Seeded, stratified train / validation / holdout split.

Validation picks the winner among candidates; the holdout is only ever seen by the model gate,
so the gate's numbers are not inflated by the selection.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from sluice.errors import SluiceError


def stratified_split(
    frame: pd.DataFrame, label: str, *, seed: int, validation_fraction: float, holdout_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    if not (
        0 < validation_fraction < 1
        and 0 < holdout_fraction < 1
        and validation_fraction + holdout_fraction < 1
    ):
        raise SluiceError("validation and holdout fractions must be in (0, 1) and sum to less than 1")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {"train": [], "validation": [], "holdout": []}
    labels = frame[label].to_numpy()
    for value in sorted(pd.unique(labels[~pd.isna(labels)]).tolist()):
        idx = np.flatnonzero(labels == value)
        idx = idx[rng.permutation(len(idx))]
        n_hold = round(len(idx) * holdout_fraction)
        n_val = round(len(idx) * validation_fraction)
        parts["holdout"].append(idx[:n_hold])
        parts["validation"].append(idx[n_hold : n_hold + n_val])
        parts["train"].append(idx[n_hold + n_val :])
    out = []
    for name in ("train", "validation", "holdout"):
        rows = np.sort(np.concatenate(parts[name])) if parts[name] else np.array([], dtype=int)
        part = frame.iloc[rows].reset_index(drop=True)
        if part[label].nunique() < 2:
            raise SluiceError(f"the {name} split has fewer than two label classes; more data is needed")
        out.append(part)
    return out[0], out[1], out[2]
