"""Parity: the served model answers what the registered scikit-learn model answers, row for row.

The serving image does not run scikit-learn: it runs the model's `onnx` flavor through
`ml.serving` (request decoder restating `normalize_frame`, then onnxruntime). So the gate sends the
WHOLE holdout to the server it measures, in one Open Inference Protocol v2 request (the same
decoder and graph as `/invocations`, with probabilities), and compares every row with the
registered model's `predict` and `predict_proba`: labels must be equal and probabilities within
`max_abs_proba_diff` (1e-6 by default; measured: 0 for trees, 3.3e-16 for logistic regression).
A difference fails the gate naming the first differing holdout row.

The export itself is the first serving check: a model with no `onnx` flavor has no fast serving
path and is refused with the exporter's one-line reason (never served by a slower path that was
not measured).
"""

from __future__ import annotations

import http.client
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd

from gates.checks.result import fmt, make_check
from ml.serving.decoding import frame_columns
from ml.serving.signature import ExportError

DATATYPES = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}
PARITY_TIMEOUT_S = 120.0


def export_failure(model_dir: Path) -> str:
    """Why a model directory has no usable `onnx` flavor, in one line (the exporter's own words)."""
    from ml.serving.export import has_flavor, to_onnx

    if has_flavor(model_dir):
        return "the onnx flavor is present"
    try:
        import mlflow.sklearn

        to_onnx(mlflow.sklearn.load_model(str(model_dir)))
    except ExportError as exc:
        return str(exc)
    except Exception as exc:  # not even a scikit-learn model: say what MLflow said
        return f"no onnx flavor and not a loadable scikit-learn model: {type(exc).__name__}"
    return "the model was logged without its onnx flavor; add it with: python -m ml.serving export DIR"


def export_check(failure: str | None, estimator: str | None = None) -> dict:
    if failure is None:
        reason = f"served from the model's onnx flavor ({estimator or 'graph'}) by python -m ml.serving"
    else:
        reason = f"no fast serving path: {failure}"
    return make_check("serving.export", "serving", failure is None, True, "==", reason)


def infer_body(frame: pd.DataFrame, signature: Any) -> bytes:
    """One OIP v2 request holding every row of `frame`: one input tensor per feature column."""
    columns = frame_columns(frame, signature.names)
    inputs = [
        {"name": name, "shape": [len(frame)], "datatype": DATATYPES[kind], "data": columns[name]}
        for name, kind in signature.columns
    ]
    return orjson.dumps({"id": "sluice-parity", "inputs": inputs})


def served_predictions(port: int, model_name: str, body: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(labels, probabilities) the server answers; RuntimeError with its one-line reason otherwise."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=PARITY_TIMEOUT_S)
    try:
        conn.request(
            "POST", f"/v2/models/{model_name}/infer", body=body, headers={"Content-Type": "application/json"}
        )
        reply = conn.getresponse()
        payload = reply.read()
    finally:
        conn.close()
    if reply.status != 200:
        raise RuntimeError(f"the server answered {reply.status}: {payload[:200].decode(errors='replace')}")
    outputs = {o["name"]: o for o in orjson.loads(payload)["outputs"]}
    labels = np.asarray(outputs["predict"]["data"], dtype=np.int64)
    proba = np.asarray(outputs["predict_proba"]["data"], dtype=np.float64).reshape(
        outputs["predict_proba"]["shape"]
    )
    return labels, proba


def compare(
    expected_labels: Any, expected_proba: Any, labels: np.ndarray, proba: np.ndarray, tolerance: float
) -> dict:
    """Row-by-row comparison; `first_bad_row` is the position of the first row that differs."""
    expected_labels = np.asarray(expected_labels)
    expected_proba = np.asarray(expected_proba, dtype=np.float64)
    if labels.shape != expected_labels.shape or proba.shape != expected_proba.shape:
        raise RuntimeError(
            f"the server answered {labels.shape[0]} labels and probabilities of shape {list(proba.shape)} "
            f"for {expected_labels.shape[0]} rows with {expected_proba.shape[1]} classes"
        )
    diff = np.abs(proba - expected_proba).max(axis=1) if len(labels) else np.zeros(0)
    label_differs = labels != expected_labels
    bad = np.flatnonzero(label_differs | ~(diff <= tolerance))  # NaN differs
    return {
        "rows": len(labels),
        "differing_rows": len(bad),
        "label_mismatches": int(label_differs.sum()),
        "max_abs_proba_diff": float(np.nanmax(diff)) if len(diff) else 0.0,
        "tolerance": tolerance,
        "first_bad_row": int(bad[0]) if len(bad) else None,
        "first": None
        if not len(bad)
        else {
            "served_label": int(labels[bad[0]]),
            "expected_label": int(expected_labels[bad[0]]),
            "served_proba": proba[bad[0]].tolist(),
            "expected_proba": expected_proba[bad[0]].tolist(),
        },
    }


def parity_check(report: dict | None, index: pd.Index | None = None, failure: str | None = None) -> dict:
    """`serving.parity`: observed = holdout rows where the served model differs (must be 0)."""
    if report is None:
        return make_check("serving.parity", "serving", None, 0, "<=", f"could not be compared: {failure}")
    rows, tol = report["rows"], report["tolerance"]
    if report["first_bad_row"] is None:
        reason = (
            f"the served model equals the registered scikit-learn model on all {rows} holdout rows "
            f"(labels identical, max |Δp| {fmt(report['max_abs_proba_diff'])} <= {fmt(tol)})"
        )
        return make_check("serving.parity", "serving", 0, 0, "<=", reason, details=report)
    row = report["first_bad_row"]
    first = report["first"]
    where = f"holdout row {row}" + (f" (index {index[row]})" if index is not None else "")
    reason = (
        f"the served model differs from the registered scikit-learn model on {report['differing_rows']} "
        f"of {rows} holdout rows; first: {where}: served label {first['served_label']} "
        f"p={_probs(first['served_proba'])}, scikit-learn label {first['expected_label']} "
        f"p={_probs(first['expected_proba'])} (tolerance {fmt(tol)})"
    )
    return make_check("serving.parity", "serving", report["differing_rows"], 0, "<=", reason, details=report)


def _probs(values: list[float]) -> str:
    return "[" + ", ".join(f"{v:.9g}" for v in values) + "]"


def judge_parity(
    port: int,
    model_name: str,
    frame: pd.DataFrame,
    signature: Any,
    expected: tuple[Any, Any],
    tolerance: float,
) -> dict:
    """Ask the running server about every row of `frame` and compare; returns the check."""
    expected_labels, expected_proba = expected
    try:
        labels, proba = served_predictions(port, model_name, infer_body(frame, signature))
        report = compare(expected_labels, expected_proba, labels, proba, tolerance)
    except (OSError, http.client.HTTPException, RuntimeError, KeyError, ValueError) as exc:
        return parity_check(None, failure=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    return parity_check(report, frame.index)
