"""Serving from the feature store: a request carrying only entity keys is scored on the features the
online store (a real redis-server) holds for them, exactly as the same request with those
features; an unknown entity is a 404 naming it."""

from __future__ import annotations

import datetime as dt
import json
import os

import pandas as pd
import pytest

from ml.features import config, definitions, store
from tests.feature_store import small_store
from tests.ml.serving_models import fit_kind, save_with_flavor, split_demo
from tests.ml.test_serving import call


@pytest.fixture(scope="module")
def served(redis_server, tmp_path_factory):
    from ml.serving.app import ServingApp
    from ml.serving.features import FeatureLookup
    from ml.serving.runtime import OnnxModel

    base = tmp_path_factory.mktemp("serving-features")
    built = small_store(base, online=redis_server["connection"])
    store.materialize(
        built.store, built.config, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), dt.datetime.now(dt.UTC)
    )
    contract, train, _ = split_demo(built.demo)
    model = save_with_flavor(fit_kind(contract, train, "logistic_regression"), base / "model")
    previous = os.environ.get(config.REDIS_ENV)
    os.environ[config.REDIS_ENV] = redis_server["connection"]
    try:
        lookup = FeatureLookup("local", built.config.home)
    finally:
        if previous is None:
            os.environ.pop(config.REDIS_ENV)
        else:
            os.environ[config.REDIS_ENV] = previous
    app = ServingApp(OnnxModel.load(model), name="credit-default", features=lookup)
    entities = pd.read_parquet(built.sources.entities)
    keys = entities[list(definitions.JOIN_KEYS)].tail(4).astype("int64")
    return app, lookup, keys


def test_entity_keys_are_scored_on_the_online_features(served):
    app, lookup, keys = served
    by_key = call(
        app, "POST", "/invocations", json.dumps({"dataframe_records": keys.to_dict("records")}).encode()
    )
    online = lookup.columns({k: keys[k].tolist() for k in keys.columns}, len(keys))
    rows = pd.DataFrame(online)[app.model.columns]
    by_features = call(
        app, "POST", "/invocations", json.dumps({"dataframe_records": rows.to_dict("records")}).encode()
    )
    assert by_key[0] == 200 and by_key == by_features


def test_v2_infer_takes_entity_keys_too(served):
    app, _, keys = served
    body = {
        "inputs": [
            {"name": k, "shape": [len(keys), 1], "datatype": "INT64", "data": keys[k].tolist()}
            for k in keys.columns
        ]
    }
    status, answer = call(app, "POST", "/v2/models/credit-default/infer", json.dumps(body).encode())
    assert status == 200, answer
    assert json.loads(answer)["outputs"][0]["shape"] == [len(keys)]


def test_an_unknown_entity_is_a_404_naming_it(served):
    app, _, _ = served
    body = {"dataframe_records": [{"applicant_id": 999_999_999, "loan_id": 1_000_001}]}
    status, answer = call(app, "POST", "/invocations", json.dumps(body).encode())
    assert status == 404
    assert "no applicant_profile features in the online store for applicant_id=999999999" in answer.decode()
