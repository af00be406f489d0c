"""The serving checks of the model gate: export and parity, on really served models.

Each candidate kind the pipeline trains (logistic regression, decision tree, random forest) is
fitted on the seeded demo slice, saved as the log step saves it (sklearn + onnx flavor), served by
`python -m ml.serving` and asked about the whole holdout over OIP v2; the answers must equal the
scikit-learn model's. A mismatch must fail naming the first differing row, and a model with no
fast serving path must fail the gate with the exporter's one-line reason, unserved.
"""

from __future__ import annotations

import numpy as np
import pytest

from gates.checks.parity import compare, parity_check
from gates.checks.serving import serving_session
from gates.gate_policy import load_policy
from ml.data.demo import write_demo
from tests.ml.serving_models import KINDS, fit_kind, save_with_flavor, split_demo

pytestmark = pytest.mark.slow
POLICY = load_policy()["model"]
POLICY = {
    **POLICY,
    "latency": {**POLICY["latency"], "requests": 20, "warmup_requests": 2, "saturation_requests": 0},
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    contract, train, holdout = split_demo(
        write_demo(tmp_path_factory.mktemp("demo"), reference_rows=3000, current_rows=3000)
    )
    return contract, train, holdout[[c.name for c in contract.features]]


@pytest.fixture(scope="module")
def served(demo, tmp_path_factory):
    contract, train, _ = demo
    root = tmp_path_factory.mktemp("parity")
    fitted = {kind: fit_kind(contract, train, kind) for kind in KINDS}
    return {kind: (model, save_with_flavor(model, root / kind)) for kind, model in fitted.items()}


def _judge(model_dir, features, expected) -> dict:
    with serving_session(model_dir, POLICY, "credit-default") as session:
        return {c["name"]: c for c in session.judge(features, expected)}


@pytest.mark.parametrize("kind", KINDS)
def test_the_served_model_equals_the_registered_one_on_the_whole_holdout(kind, served, demo):
    model, model_dir = served[kind]
    features = demo[2]
    checks = _judge(model_dir, features, (model.predict(features), model.predict_proba(features)))
    assert checks["serving.export"]["passed"], checks["serving.export"]["reason"]
    parity = checks["serving.parity"]
    assert parity["passed"], parity["reason"]
    assert parity["details"]["rows"] == len(features) == 900
    assert parity["details"]["label_mismatches"] == 0 and parity["details"]["max_abs_proba_diff"] <= 1e-12
    assert checks["latency.errors"]["passed"]


def test_a_served_model_that_differs_fails_naming_the_first_differing_row(served, demo):
    """Serve the forest, compare with the tree: the gate must fail at the first row they disagree on."""
    tree, _ = served["decision_tree"]
    forest, forest_dir = served["random_forest"]
    features = demo[2]
    expected = (tree.predict(features), tree.predict_proba(features))
    parity = _judge(forest_dir, features, expected)["serving.parity"]
    differs = (tree.predict(features) != forest.predict(features)) | (
        np.abs(tree.predict_proba(features) - forest.predict_proba(features)).max(axis=1) > 1e-6
    )
    first = int(np.flatnonzero(differs)[0])
    assert not parity["passed"] and parity["observed"] == int(differs.sum())
    assert parity["details"]["first_bad_row"] == first
    assert f"first: holdout row {first} (index {features.index[first]})" in parity["reason"]
    assert "\n" not in parity["reason"]


def test_a_probability_off_by_more_than_the_tolerance_is_a_mismatch():
    labels, proba = np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]])
    served = proba.copy()
    served[2] += [-2e-6, 2e-6]
    report = compare(labels, proba, labels, served, 1e-6)
    assert report["first_bad_row"] == 2 and report["label_mismatches"] == 0
    check = parity_check(report)
    assert not check["passed"] and "holdout row 2:" in check["reason"]
    assert compare(labels, proba, labels, proba + 1e-7, 1e-6)["first_bad_row"] is None


def test_a_model_without_a_fast_serving_path_fails_the_gate_unserved(demo, tmp_path):
    import mlflow.sklearn
    from sklearn.pipeline import Pipeline
    from sklearn.svm import SVC

    from ml.training.features import build_preprocessor

    contract, train, features = demo
    model = Pipeline([("prepare", build_preprocessor(contract)), ("model", SVC())])
    model.fit(train.head(300), train[contract.label].head(300).astype(int))
    mlflow.sklearn.save_model(
        model, str(tmp_path / "svc"), serialization_format="cloudpickle", pip_requirements=[]
    )
    with serving_session(tmp_path / "svc", POLICY) as session:
        assert session.server is None  # nothing slower is served in its place
        checks = {c["name"]: c for c in session.judge(features, None)}
    export = checks["serving.export"]
    assert not export["passed"] and export["reason"] == (
        "no fast serving path: no fast serving path for SVC "
        "(exportable: LogisticRegression, DecisionTreeClassifier, RandomForestClassifier)"
    )
    for name in ("serving.parity", "latency.p99_ms", "latency.achieved_rps"):
        assert not checks[name]["passed"] and "SVC" in checks[name]["reason"]
    assert "SVC" in session.evidence()["failure"]
