"""ml.serving: exact ONNX export, both protocols, 4xx for bad bodies, the MLflow flavor, the server.

Models are fitted on the seeded demo slice with the project's own builder (tests/ml/serving_models),
so what is exported is what `sluice run` registers. Nothing is mocked: a real onnxruntime session,
real MLflow model directories, and for the HTTP tests a real `python -m ml.serving` process.
"""

from __future__ import annotations

import asyncio
import json
import random
import subprocess
import sys

import numpy as np
import orjson
import pandas as pd
import pytest

from ml.serving.decoding import frame_columns
from ml.serving.export import to_onnx
from ml.serving.runtime import OnnxModel
from ml.serving.signature import ExportError
from tests.ml.serving_models import KINDS, fit_kind, save_with_flavor, split_demo


@pytest.fixture(scope="module")
def data(demo_slice):
    return split_demo(demo_slice)


@pytest.fixture(scope="module")
def models(data):
    contract, train, _ = data
    return {kind: fit_kind(contract, train, kind) for kind in KINDS}


@pytest.fixture(scope="module")
def runtimes(models):
    return {kind: OnnxModel(to_onnx(model).SerializeToString()) for kind, model in models.items()}


def in_process(runtime: OnnxModel, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return runtime.predict_columns(frame_columns(frame, runtime.columns), len(frame))


@pytest.mark.parametrize("kind", KINDS)
def test_the_graph_equals_scikit_learn_on_every_holdout_row(kind, models, runtimes, data):
    holdout = data[2]
    labels, proba = in_process(runtimes[kind], holdout)
    assert (labels == models[kind].predict(holdout)).all()
    assert np.abs(proba - models[kind].predict_proba(holdout)).max() <= 1e-12


def test_forest_ties_are_broken_as_scikit_learn_breaks_them(data):
    """Pure leaves and an even number of trees make 50/50 votes; the label must still match."""
    contract, train, holdout = data
    model = fit_kind(contract, train, "random_forest", n_estimators=40, max_depth=None, min_samples_leaf=1)
    proba = model.predict_proba(holdout)
    assert (proba[:, 0] == proba[:, 1]).any(), "no tie in the holdout: the test would prove nothing"
    labels, served = in_process(OnnxModel(to_onnx(model).SerializeToString()), holdout)
    assert (labels == model.predict(holdout)).all() and np.abs(served - proba).max() == 0.0


def test_an_estimator_without_a_fast_path_is_refused_in_one_line(data):
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from ml.training.features import build_preprocessor

    contract, train, _ = data
    model = Pipeline([("prepare", build_preprocessor(contract)), ("model", SVC())])
    model.fit(train.head(300), train[contract.label].head(300).astype(int))
    with pytest.raises(ExportError) as err:
        to_onnx(model)
    assert str(err.value).startswith("no fast serving path for SVC") and "\n" not in str(err.value)


def test_a_pipeline_that_is_not_sluices_is_refused_in_one_line():
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(ExportError, match="not a Sluice pipeline") as err:
        to_onnx(LogisticRegression().fit([[0.0], [1.0]], [0, 1]))
    assert "\n" not in str(err.value)


# ------------------------------------------------------------------------------ protocols
def call(app, method: str, path: str, body: bytes = b"", content_type: str | None = "application/json"):
    out: dict = {}

    async def receive():
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]
        else:
            out["body"] = message["body"]

    headers = [(b"content-type", content_type.encode())] if content_type else []
    asyncio.run(app({"type": "http", "method": method, "path": path, "headers": headers}, receive, send))
    return out["status"], out["body"]


@pytest.fixture(scope="module")
def app(runtimes):
    from ml.serving.app import ServingApp

    return ServingApp(runtimes["logistic_regression"], name="credit-default")


@pytest.fixture(scope="module")
def rows(data, runtimes):
    features = data[2][runtimes["logistic_regression"].columns].head(3)
    return json.loads(features.to_json(orient="records")), features


@pytest.mark.parametrize("shape", ["split", "records", "instances", "inputs", "inputs-columns", "csv"])
def test_mlflow_formats_predict_like_scikit_learn(shape, app, rows, models):
    records, features = rows
    columns = {k: [r[k] for r in records] for k in records[0]}
    docs = {
        "split": {"dataframe_split": json.loads(features.to_json(orient="split", index=False))},
        "records": {"dataframe_records": records},
        "instances": {"instances": records},
        "inputs": {"inputs": records},
        "inputs-columns": {"inputs": columns},
    }
    if shape == "csv":
        status, body = call(app, "POST", "/invocations", features.to_csv(index=False).encode(), "text/csv")
    else:
        status, body = call(app, "POST", "/invocations", json.dumps(docs[shape]).encode())
    assert status == 200, body
    assert orjson.loads(body)["predictions"] == models["logistic_regression"].predict(features).tolist()


def test_v2_infer_returns_labels_and_probabilities(app, rows, models):
    records, features = rows
    datatype = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}
    kinds = dict(app.model.signature.columns)
    inputs = [
        {
            "name": c,
            "shape": [len(records), 1],
            "datatype": datatype[kinds[c]],
            "data": [r[c] for r in records],
        }
        for c in records[0]
    ]
    status, body = call(
        app, "POST", "/v2/models/credit-default/infer", json.dumps({"id": "r1", "inputs": inputs}).encode()
    )
    assert status == 200, body
    reply = orjson.loads(body)
    out = {o["name"]: np.asarray(o["data"]).reshape(o["shape"]) for o in reply["outputs"]}
    assert reply["id"] == "r1" and reply["model_name"] == "credit-default"
    model = models["logistic_regression"]
    assert out["predict"].tolist() == model.predict(features).tolist()
    assert np.abs(out["predict_proba"] - model.predict_proba(features)).max() <= 1e-12


@pytest.mark.parametrize(
    ("path", "status"),
    [("/ping", 200), ("/health", 200), ("/version", 200), ("/v2", 200), ("/v2/health/live", 200),
     ("/v2/health/ready", 200), ("/v2/models/credit-default", 200), ("/v2/models/credit-default/ready", 200),
     ("/v2/models/other/ready", 404), ("/nowhere", 404)],
)  # fmt: skip
def test_health_and_metadata_routes(app, path, status):
    assert call(app, "GET", path)[0] == status


def test_model_metadata_names_every_input_with_its_datatype(app, runtimes):
    doc = orjson.loads(call(app, "GET", "/v2/models/credit-default")[1])
    assert [i["name"] for i in doc["inputs"]] == runtimes["logistic_regression"].columns
    assert {i["datatype"] for i in doc["inputs"]} <= {"FP64", "BOOL", "BYTES"}
    assert [o["name"] for o in doc["outputs"]] == ["predict", "predict_proba"]


BAD_BODIES = [
    (b"{not json", "application/json", 400),
    (b"", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b"null", "application/json", 400),
    (b'{"dataframe_records": [], "inputs": []}', "application/json", 400),
    (b'{"dataframe_records": []}', "application/json", 400),
    (b'{"dataframe_records": [1, 2]}', "application/json", 400),
    (b'{"dataframe_split": {"data": [[1]]}}', "application/json", 400),
    (b'{"dataframe_split": {"columns": ["age"], "data": [[1, 2]]}}', "application/json", 400),
    (b'{"dataframe_records": [{"age": 1}]}', "application/json", 400),
    (b'{"inputs": {"age": [1, 2], "income": [3]}}', "application/json", 400),
    (b"{}", "text/plain", 415),
    (b"{}", None, 415),
    (b"{}", "application/json; charset=latin-1", 415),
    (b"\xff\xfe", "application/json", 400),
    (b"a,b\n1", "text/csv", 400),
    (b"", "text/csv", 400),
    (b"PAR1 not parquet", "application/vnd.apache.parquet", 400),
]


@pytest.mark.parametrize(("body", "content_type", "status"), BAD_BODIES)
def test_bad_invocations_get_4xx_with_a_one_line_reason(app, body, content_type, status):
    got, reply = call(app, "POST", "/invocations", body, content_type)
    assert got == status
    message = orjson.loads(reply)["message"]
    assert message and "\n" not in message and "Traceback" not in message


@pytest.mark.parametrize(
    "bad", [{"age": "abc"}, {"age": 1e400}, {"age": [1]}, {"has_cosigner": "maybe"}, {"region": {"a": 1}}]
)
def test_unreadable_values_are_named_in_the_reason(app, rows, bad):
    records, _ = rows
    body = json.dumps({"dataframe_records": [{**records[0], **bad}]}).encode()
    status, reply = call(app, "POST", "/invocations", body)
    assert status == 400
    assert next(iter(bad)) in orjson.loads(reply)["message"]


def test_v2_bad_tensors_get_4xx_with_a_one_line_reason(app):
    for doc in [
        {"inputs": []},
        {"inputs": [{"name": "age", "shape": [1], "datatype": "FP64", "data": [1]}]},
        {"inputs": [{"name": "region", "shape": [1], "datatype": "FP64", "data": [1]}]},
        {"inputs": [{"name": "age", "shape": [2, 2], "datatype": "FP64", "data": [1, 2, 3, 4]}]},
        {"inputs": [{"name": ["age"], "shape": [1], "datatype": "FP64", "data": [1]}]},
        {"inputs": [{"name": "nope", "shape": [1], "datatype": "FP64", "data": [1]}]},
        {"inputs": [{"name": "age", "shape": [3], "datatype": "FP64", "data": [1]}]},
        {"inputs": "age"},
    ]:
        status, reply = call(app, "POST", "/v2/models/credit-default/infer", json.dumps(doc).encode())
        assert 400 <= status < 500, (doc, reply)
        assert "\n" not in orjson.loads(reply)["error"]


def _mutations(seed: int, body: dict, count: int) -> list[bytes]:
    """Seeded random damage to a valid body: values swapped for other JSON types, keys dropped, cut."""
    rng = random.Random(seed)  # noqa: S311 (seeded test data, not secrets)
    junk = [None, True, -1, 1e308, "x", "", [], {}, [[1]], {"a": [1]}, float("nan")]
    out = []
    for _ in range(count):
        doc = json.loads(json.dumps(body))
        node = doc
        while isinstance(node, (dict, list)) and node and rng.random() < 0.8:
            key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
            if rng.random() < 0.3 or not isinstance(node[key], (dict, list)):
                node[key] = rng.choice(junk) if rng.random() < 0.8 else None
                break
            node = node[key]
        text = json.dumps(doc).encode()
        out.append(text[: rng.randrange(len(text))] if rng.random() < 0.1 else text)
    return out


def test_a_batch_of_damaged_bodies_never_gets_a_5xx(app, rows):
    records, features = rows
    split = {"dataframe_split": json.loads(features.to_json(orient="split", index=False))}
    v2 = {
        "inputs": [{"name": c, "shape": [1], "datatype": "FP64", "data": [records[0][c]]} for c in records[0]]
    }
    for path, body in (("/invocations", split), ("/v2/models/credit-default/infer", v2)):
        for damaged in _mutations(11, body, 400):
            status, reply = call(app, "POST", path, damaged)
            assert status < 500, (path, damaged, reply)
            if status >= 400:
                doc = orjson.loads(reply)
                assert "\n" not in (doc.get("message") or doc.get("error"))


# ----------------------------------------------------------------------------- MLflow flavor
def test_the_flavor_keeps_sklearn_and_adds_onnx(tmp_path, models, data):
    import mlflow.onnx
    import mlflow.sklearn
    import yaml

    model_dir = save_with_flavor(models["random_forest"], tmp_path / "model")
    flavors = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]
    assert {"sklearn", "python_function", "onnx"} <= set(flavors)
    assert flavors["python_function"]["loader_module"] == "mlflow.sklearn"
    holdout = data[2]
    sk = mlflow.sklearn.load_model(str(model_dir))
    assert (sk.predict(holdout) == models["random_forest"].predict(holdout)).all()
    assert mlflow.onnx.load_model(str(model_dir)).graph.node
    labels, _ = in_process(OnnxModel.load(model_dir), holdout)
    assert (labels == sk.predict(holdout)).all()


def test_a_model_without_the_flavor_is_refused_with_the_fix_and_export_adds_it(tmp_path, models):
    import mlflow.sklearn

    from ml.training.persist import SKOPS_TRUSTED_TYPES

    path = tmp_path / "m"
    mlflow.sklearn.save_model(
        models["decision_tree"], str(path), serialization_format="skops",
        skops_trusted_types=list(SKOPS_TRUSTED_TYPES), pip_requirements=[],
    )  # fmt: skip
    with pytest.raises(ExportError, match=r"python -m ml\.serving export"):
        OnnxModel.load(path)
    done = subprocess.run(
        [sys.executable, "-m", "ml.serving", "export", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert OnnxModel.load(path).signature.estimator == "DecisionTreeClassifier"


def test_export_of_a_directory_that_is_no_model_is_a_usage_error(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "ml.serving", "export", str(tmp_path)], capture_output=True, text=True
    )
    assert done.returncode == 2 and "no MLmodel" in done.stderr and len(done.stderr.splitlines()) == 1


def test_frame_columns_turn_missing_markers_into_none():
    frame = pd.DataFrame(
        {"a": pd.array([1.0, None], dtype="Float64"), "b": pd.array(["x", None], dtype="string")}
    )
    assert frame_columns(frame, ["a", "b"]) == {"a": [1.0, None], "b": ["x", None]}
