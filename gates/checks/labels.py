"""Which values of a label (or of a model's predictions) are the positive class.

Labels arrive typed by the contract (integers as float64, booleans as "boolean", categories as
text) while predictions come back as whatever the model emits (int, float, str, bool). Comparing
canonical keys makes 1, 1.0, "1" and True agree, so no check silently counts zero positives
because of a dtype mismatch.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ml.data.words import FALSE_WORDS, TRUE_WORDS


def label_key(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return str(int(number)) if number.is_integer() else repr(number)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if number.is_integer() else repr(number)


def positive_mask(values: Any, positive_class: Any) -> np.ndarray:
    """Boolean array: which entries equal the positive class (missing entries never do)."""
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values))
    key = label_key(positive_class)
    if pd.api.types.is_bool_dtype(series):
        if key in TRUE_WORDS or key in FALSE_WORDS:
            target = key in TRUE_WORDS
            return series.eq(target).fillna(False).to_numpy(dtype=bool)
        return np.zeros(len(series), dtype=bool)
    if pd.api.types.is_numeric_dtype(series):
        try:
            target_num = float(key)
        except ValueError:
            if key in TRUE_WORDS or key in FALSE_WORDS:
                target_num = 1.0 if key in TRUE_WORDS else 0.0
            else:
                return np.zeros(len(series), dtype=bool)
        return series.to_numpy(dtype=np.float64, na_value=np.nan) == target_num
    keys = series.map(lambda v: None if pd.isna(v) else label_key(v))
    return keys.eq(key).fillna(False).to_numpy(dtype=bool)


def class_counts(values: pd.Series) -> dict[str, int]:
    """Distinct non-missing label classes (canonical keys) and their row counts."""
    present = values.dropna()
    if pd.api.types.is_numeric_dtype(present) and not pd.api.types.is_bool_dtype(present):
        counts = present.value_counts()
        return {label_key(k): int(v) for k, v in sorted(counts.items(), key=lambda kv: kv[0])}
    counts = present.map(label_key).value_counts()
    return {str(k): int(v) for k, v in sorted(counts.items())}
