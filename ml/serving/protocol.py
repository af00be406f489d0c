"""Request bodies of both protocols -> column lists; results -> response bodies. No I/O here.

MLflow `/invocations` (as mlflow 3.17.2's `pyfunc.scoring_server` accepts them):
- `application/json` with exactly one of `dataframe_split` ({columns, data, index?}),
  `dataframe_records` ([{col: value}]), `instances` or `inputs` (records, or {col: [values]},
  or {col: value} for one row); `params` and other keys are ignored, as MLflow ignores them;
  answer `{"predictions": [label, ...]}`.
- `text/csv` (header row, then rows; an empty cell is null) and `application/vnd.apache.parquet`.

Open Inference Protocol v2 (KServe) `/v2/models/<name>/infer`: one input tensor per feature
column (the MLServer pandas-codec convention), shape [N] or [N, 1], datatype BYTES for a
category, BOOL/FP*/INT*/UINT* otherwise; outputs `predict` (INT64 [N]) and `predict_proba`
(FP64 [N, classes]), or the ones named in `outputs`.

Every malformed body raises `RequestError` with a one-line reason (the app answers 4xx).
"""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import orjson

from ml.serving.decoding import RequestError

MLFLOW_FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")
JSON = "application/json"
CSV = "text/csv"
PARQUET = "application/vnd.apache.parquet"
NUMERIC_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64"}
)
OUTPUTS = ("predict", "predict_proba")


def media_type(content_type: str | None) -> str:
    """The media type of a Content-Type header; 415 for charsets other than UTF-8 or unknown parameters."""
    if not content_type:
        raise RequestError(f"no Content-Type: send {JSON}, {CSV} or {PARQUET}", 415)
    mime, *params = (part.strip() for part in content_type.split(";"))
    for param in params:
        key, _, value = param.partition("=")
        if key.strip().lower() != "charset":
            raise RequestError(f"unsupported Content-Type parameter {key.strip()!r}", 415)
        if value.strip().strip('"').lower() not in ("utf-8", "utf8"):
            raise RequestError("only UTF-8 request bodies are supported", 415)
    return mime.lower()


def parse_json(body: bytes):
    """orjson first; the standard library only for bodies orjson refuses, e.g. the NaN literals that
    Python's `json.dumps` writes for missing numbers and MLflow's scoring server accepts."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(body)
        except (ValueError, RecursionError):
            raise RequestError(f"body is not valid JSON: {exc}") from None


# ---------------------------------------------------------------------------------- MLflow
def _records(records, field: str) -> tuple[dict[str, list], int]:
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise RequestError(f"{field} must be a list of {{column: value}} objects")
    names = dict.fromkeys(k for r in records for k in r)  # pandas: union of keys, None where absent
    return {name: [r.get(name) for r in records] for name in names}, len(records)


def _split(split) -> tuple[dict[str, list], int]:
    if not isinstance(split, dict) or "data" not in split or set(split) - {"columns", "data", "index"}:
        raise RequestError(
            "dataframe_split must be an object with 'columns' and 'data' (and optionally 'index')"
        )
    names, data = split.get("columns"), split["data"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise RequestError("dataframe_split needs 'columns', a list of column names")
    if not isinstance(data, list) or not all(
        isinstance(row, list) and len(row) == len(names) for row in data
    ):
        raise RequestError(f"dataframe_split 'data' must be a list of rows of {len(names)} values each")
    return {name: [row[i] for row in data] for i, name in enumerate(names)}, len(data)


def _tensor_columns(value, field: str) -> tuple[dict[str, list], int]:
    if isinstance(value, list):
        return _records(value, field)
    if not isinstance(value, dict):
        raise RequestError(f"{field} must be a list of records or an object of named columns")
    if all(not isinstance(v, list) for v in value.values()):  # {col: value}: one row
        return {k: [v] for k, v in value.items()}, 1
    lengths = {len(v) if isinstance(v, list) else -1 for v in value.values()}
    if len(lengths) != 1 or -1 in lengths:
        raise RequestError(f"{field} columns must all be lists of the same length")
    return dict(value), lengths.pop()


def mlflow_json(doc) -> tuple[dict[str, list], int]:
    if not isinstance(doc, dict):
        raise RequestError(f"body must be a JSON object with exactly one of {', '.join(MLFLOW_FORMATS)}")
    found = [key for key in MLFLOW_FORMATS if key in doc]
    if len(found) != 1:
        raise RequestError(
            f"body must hold exactly one of {', '.join(MLFLOW_FORMATS)}; found {', '.join(found) or 'none'}"
        )
    key = found[0]
    if key == "dataframe_split":
        return _split(doc[key])
    if key == "dataframe_records":
        return _records(doc[key], key)
    return _tensor_columns(doc[key], key)


def _csv(body: bytes) -> tuple[dict[str, list], int]:
    try:
        rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise RequestError(f"body is not UTF-8 CSV: {exc}") from None
    if not rows:
        raise RequestError("CSV body is empty: send a header row, then one row per record")
    header, data = rows[0], [r for r in rows[1:] if r]
    if any(len(r) != len(header) for r in data):
        raise RequestError(f"every CSV row must have {len(header)} cells like the header")
    return {name: [r[i] if r[i] != "" else None for r in data] for i, name in enumerate(header)}, len(data)


def _parquet(body: bytes) -> tuple[dict[str, list], int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(body))
    except (pa.ArrowException, OSError) as exc:
        raise RequestError(f"body is not a Parquet file: {str(exc).splitlines()[0]}") from None
    return table.to_pydict(), table.num_rows


def mlflow_request(body: bytes, content_type: str | None) -> tuple[dict[str, list], int]:
    mime = media_type(content_type)
    if mime == JSON:
        return mlflow_json(parse_json(body))
    if mime == CSV:
        return _csv(body)
    if mime == PARQUET:
        return _parquet(body)
    raise RequestError(f"unsupported Content-Type {mime!r}: send {JSON}, {CSV} or {PARQUET}", 415)


def mlflow_response(labels: np.ndarray) -> bytes:
    return orjson.dumps({"predictions": labels}, option=orjson.OPT_SERIALIZE_NUMPY)


def mlflow_error(error: RequestError) -> bytes:
    """MLflow's error body shape, so its clients read the reason where they look for it."""
    code = "BAD_REQUEST" if error.status == 400 else "INVALID_PARAMETER_VALUE"
    return orjson.dumps({"error_code": code, "message": str(error)})


# --------------------------------------------------------------------------------- OIP v2
def _flatten(data: list) -> list:
    """Row-major elements of a natural (nested) or already flat tensor data array."""
    if not any(isinstance(v, list) for v in data):
        return data
    flat: list = []
    for v in data:
        flat.extend(_flatten(v) if isinstance(v, list) else (v,))
    return flat


def _v2_input(spec, kinds: dict[str, str]) -> tuple[str, list, int]:
    if not isinstance(spec, dict) or not {"name", "shape", "datatype", "data"} <= set(spec):
        raise RequestError("each input needs name, shape, datatype and data")
    name, shape, datatype, data = spec["name"], spec["shape"], spec["datatype"], spec["data"]
    if not isinstance(name, str) or not isinstance(datatype, str):
        raise RequestError("input name and datatype must be strings")
    if name not in kinds:
        raise RequestError(f"unknown input {name!r}; the model's inputs are listed at GET /v2/models/<name>")
    if not (isinstance(shape, list) and shape and all(type(d) is int and d >= 0 for d in shape)):
        raise RequestError(f"input {name!r}: shape must be a list of non-negative integers")
    if len(shape) > 2 or (len(shape) == 2 and shape[1] != 1):
        raise RequestError(f"input {name!r}: shape must be [N] or [N, 1], got {shape}")
    expected = "BYTES" if kinds[name] == "categorical" else None
    if expected and datatype != expected:
        raise RequestError(f"input {name!r}: datatype must be BYTES, got {datatype!r}")
    if not expected and datatype not in NUMERIC_DATATYPES:
        raise RequestError(f"input {name!r}: datatype must be BOOL, INT*, UINT* or FP*, got {datatype!r}")
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: data must be a JSON array")
    flat = _flatten(data)
    if len(flat) != shape[0]:
        raise RequestError(f"input {name!r}: shape {shape} needs {shape[0]} values, data has {len(flat)}")
    return name, flat, shape[0]


def v2_request(body: bytes, kinds: dict[str, str]) -> tuple[dict[str, list], int, list[str], object]:
    """(columns, rows, requested outputs, request id or None) of an OIP v2 inference request."""
    doc = parse_json(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("inputs"), list) or not doc["inputs"]:
        raise RequestError("body must be a JSON object with a non-empty 'inputs' array")
    columns, rows = {}, set()
    for spec in doc["inputs"]:
        name, flat, n = _v2_input(spec, kinds)
        columns[name] = flat
        rows.add(n)
    if len(rows) != 1:
        raise RequestError(f"inputs disagree on the number of rows: {sorted(rows)}")
    wanted = doc.get("outputs") or [{"name": n} for n in OUTPUTS]
    if not isinstance(wanted, list) or not all(
        isinstance(o, dict) and o.get("name") in OUTPUTS for o in wanted
    ):
        raise RequestError(f"outputs must name some of {', '.join(OUTPUTS)}")
    return columns, rows.pop(), [o["name"] for o in wanted], doc.get("id")


def v2_response(model: str, version: str | None, request_id, outputs: list[str], labels, proba) -> bytes:
    tensors = {
        "predict": {"name": "predict", "shape": [len(labels)], "datatype": "INT64", "data": labels},
        "predict_proba": {
            "name": "predict_proba",
            "shape": list(proba.shape),
            "datatype": "FP64",
            "data": proba.ravel(),
        },
    }
    doc = {"model_name": model, "outputs": [tensors[n] for n in outputs]}
    if version:
        doc["model_version"] = version
    if request_id is not None:
        doc["id"] = request_id
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def v2_error(message: str) -> bytes:
    return orjson.dumps({"error": message})
