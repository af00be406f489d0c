"""Score a fitted model on a labelled frame: the metrics every gate and summary speaks in."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

METRIC_NAMES = ("accuracy", "f1", "roc_auc", "precision", "recall")


def binary_target(values: pd.Series, positive_class: Any) -> np.ndarray:
    """1 where the label equals the contract's positive class, else 0 (labels are never missing here)."""
    if isinstance(positive_class, bool):
        hits = values.astype("boolean") == positive_class
    elif pd.api.types.is_numeric_dtype(values) and not isinstance(positive_class, str):
        hits = values == float(positive_class)
    else:
        hits = values.astype("string").str.strip() == str(positive_class)
    return hits.fillna(False).to_numpy(dtype=int)


def score(model, frame: pd.DataFrame, y_true: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    proba = model.predict_proba(frame)[:, list(model.classes_).index(1)]
    pred = (proba >= 0.5).astype(int)
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "f1": float(f1_score(y_true, pred, zero_division=0)),
        "roc_auc": float(roc_auc_score(y_true, proba)),
        "precision": float(precision_score(y_true, pred, zero_division=0)),
        "recall": float(recall_score(y_true, pred, zero_division=0)),
        "confusion_matrix": confusion_matrix(y_true, pred, labels=[0, 1]).tolist(),
        "rows": len(y_true),
    }
