"""`sluice run --features` end to end: the demo trained from the feature store on KFP's local runner,
registered with tags naming the feature service, the skew check judged in the model gate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mlflow import MlflowClient

from sluice import tags
from tests.ml.conftest import LENIENT_POLICY

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from sluice import cli

    home = tmp_path_factory.mktemp("features-run")
    args = ["run", "--features", "--home", str(home), "--no-promote", "--policy", str(LENIENT_POLICY)]
    first = cli.main(args)
    second = cli.main(args)
    return home, first, second


def test_registers_a_version_tagged_with_the_feature_service(trained):
    home, first, _ = trained
    assert first == 0
    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    version = client.get_model_version("credit-default", "1")
    record = json.loads((home / "data" / "features" / "credit_default_v1" / "features.json").read_text())
    assert version.tags[tags.FEATURE_SERVICE] == "credit_default_v1"
    assert version.tags[tags.FEATURE_SERVICE_DIGEST] == record["facts"]["feature_service_digest"]
    for view in ("applicant_profile", "loan_terms"):
        assert len(version.tags[f"{tags.FEATURE_VIEW_PREFIX}{view}.digest"]) == 64
    assert client.get_run(version.run_id).data.tags[tags.FEATURE_SERVICE] == "credit_default_v1"


def test_the_model_gate_judged_online_against_offline_features(trained):
    home, _, _ = trained
    attempts = list(Path(home / "evidence").glob("*/model-gate/*/model-evidence.json"))
    assert attempts
    for evidence in attempts:
        doc = json.loads(evidence.read_text())
        (skew,) = [c for c in doc["checks"] if c["group"] == "skew"]
        assert skew["passed"] and skew["blocking"] and not skew["skipped"]
        assert doc["subject"]["feature_service"] == "credit_default_v1"
        # the latency load sent entity keys: the online lookup is inside every timed request
        assert doc["latency"]["requests_carry"].startswith("entity keys")
        assert doc["latency"]["p99_ms"] is not None


def test_an_unchanged_rerun_answers_from_its_record(trained):
    home, _, second = trained
    assert second == 0
    from ml.runners import records

    last = json.loads((home / "runs" / records.LAST_RUN).read_text())
    assert last["fast_path"] and last["version"] == "1"  # the rebuilt training set had the same run key
