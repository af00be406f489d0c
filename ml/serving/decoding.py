"""Request values -> graph inputs: `ml.training.features.normalize_frame` restated for JSON values.

The graph starts after `normalize_frame` (see `ml.serving.export`), so its rules live here too:
numbers (and numeric strings, and booleans, as MLflow's scoring server accepts them) become
float64 with NaN for null; boolean columns take true/false, the contract's yes/no words or 0/1;
categories become strings with `__missing__` for null. A value that cannot be read raises
`RequestError` naming the column and row, which the app answers with a 400. Any change to
`normalize_frame` must be mirrored here: the gate's parity check on the holdout catches a
divergence for the values the holdout holds.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from ml.data.words import FALSE_WORDS, MISSING_CATEGORY, TRUE_WORDS
from ml.serving.signature import Signature

NAN = float("nan")


class RequestError(ValueError):
    """A request the model cannot score; `status` is the HTTP status, the message its one-line reason."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _show(value: object) -> str:
    """A request value in an error message, cut short: the reason must stay one short line."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def number(value: object, column: str, row: int) -> float:
    if value is None:
        return NAN
    try:
        # bool is an int: True -> 1.0, as MLflow casts it; numeric strings too ("41" -> 41.0)
        out = float(value) if isinstance(value, (int, float, str)) else None
    except (ValueError, OverflowError):
        out = None
    if out is not None and not math.isinf(out):
        return out
    # scikit-learn's imputer refuses infinity too ("Input contains infinity")
    raise RequestError(f"column {column!r} row {row}: expected a finite number or null, got {_show(value)}")


def flag(value: object, column: str, row: int) -> float:
    if value is None:
        return NAN
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and value in (0, 1):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return NAN
    if isinstance(value, str) and value.strip().lower() in TRUE_WORDS | FALSE_WORDS:
        return 1.0 if value.strip().lower() in TRUE_WORDS else 0.0
    raise RequestError(f"column {column!r} row {row}: expected true, false or null, got {_show(value)}")


def category(value: object, column: str, row: int) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING_CATEGORY
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):  # normalize_frame's astype(str): 5 -> "5", True -> "True"
        return str(value)
    raise RequestError(f"column {column!r} row {row}: expected a string or null, got {_show(value)}")


DECODERS: dict[str, Callable[[object, str, int], object]] = {
    "numeric": number,
    "boolean": flag,
    "categorical": category,
}


class Decoder:
    """Column lists of JSON values -> the graph's feeds, for one signature (built once per model)."""

    def __init__(self, signature: Signature) -> None:
        self.names = signature.names
        kinds = dict(signature.columns)
        self._inputs = [
            (name, object if name == "categorical" else np.float64, [(c, DECODERS[kinds[c]]) for c in cols])
            for name, cols in signature.graph_inputs()
        ]

    def __call__(self, columns: dict[str, list], rows: int) -> dict[str, np.ndarray]:
        """Feeds from column -> list of values (each `rows` long); columns the model lacks are ignored."""
        if rows == 0:
            raise RequestError("the request holds no rows")
        missing = [name for name in self.names if name not in columns]
        if missing:
            raise RequestError(f"missing column(s): {', '.join(missing)}")
        feeds = {}
        for input_name, dtype, decoders in self._inputs:
            cells = []
            for name, decode in decoders:
                values = columns[name]
                if len(values) != rows:
                    raise RequestError(f"column {name!r} has {len(values)} values, expected {rows}")
                cells.append([decode(v, name, i) for i, v in enumerate(values)])
            block = np.array(cells, dtype=dtype)  # [columns, rows]
            feeds[input_name] = np.ascontiguousarray(block.T) if rows > 1 else block.reshape(1, -1)
        return feeds


def frame_columns(frame: object, names: list[str]) -> dict[str, list]:
    """Plain-Python column lists (None for any missing marker) from a pandas frame, as JSON gives them."""
    out = {}
    for name in names:
        series = frame[name]  # type: ignore[index]
        values = series.to_numpy(dtype=object, copy=True)
        values[series.isna().to_numpy()] = None
        out[name] = values.tolist()
    return out
