"""The skew check: online values equal to the offline store's pass; a changed online value fails,
naming the feature; without the feature store the check is advisory and skipped."""

from __future__ import annotations

import datetime as dt
import math

import pandas as pd
import pytest

from gates.checks.skew import compare, not_applicable, skew_check
from ml.features import config, definitions, store
from tests.feature_store import small_store

POLICY = {"max_abs_diff": 1e-9, "sample_size": 50}


def test_compare_numbers_within_tolerance_text_and_nulls_exactly():
    offline = pd.DataFrame({"x": [1.0, 2.0, math.nan, 4.0], "s": ["a", "b", None, "d"]})
    online = {"x": [1.0, 2.0 + 1e-12, None, 4.5], "s": ["a", "B", None, None]}
    found = compare(online, offline, ["x", "s"], 1e-9)
    assert found["x"]["rows"] == 1 and found["x"]["max_abs_diff"] == pytest.approx(0.5)
    assert found["s"]["rows"] == 2 and math.isinf(found["s"]["max_abs_diff"])


def test_without_the_feature_store_the_check_is_advisory():
    check = not_applicable()
    assert check["skipped"] and not check["blocking"] and check["passed"]


@pytest.fixture(scope="module")
def materialized(redis_server, tmp_path_factory):
    built = small_store(tmp_path_factory.mktemp("skew"), online=redis_server["connection"])
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    store.materialize(built.store, built.config, dt.datetime(1970, 1, 1, tzinfo=dt.UTC), as_of)
    entities = pd.read_parquet(built.sources.entities)
    record = {
        "facts": {"feature_service": definitions.SERVICE},
        "env": "local",
        "home": str(built.config.home),
        "as_of": as_of.isoformat(),
        "sample": entities[list(definitions.JOIN_KEYS)].head(60).astype("int64").to_dict(orient="records"),
    }
    return built, record


@pytest.fixture
def redis_env(monkeypatch, redis_server):
    monkeypatch.setenv(config.REDIS_ENV, redis_server["connection"])


def test_online_equal_to_offline_passes(materialized, redis_env):
    _built, record = materialized
    check = skew_check(record, POLICY)
    assert check["passed"] and check["observed"] == 0
    assert "50 entities x 18 features equal" in check["reason"]


def test_a_changed_online_value_fails_naming_the_feature(materialized, redis_env):
    built, record = materialized
    view = built.store.get_feature_view("applicant_profile")
    profile = pd.read_parquet(built.sources.view("applicant_profile"))
    latest = profile.sort_values("event_timestamp").drop_duplicates("applicant_id", keep="last")
    row = latest[latest["applicant_id"] == record["sample"][3]["applicant_id"]].copy()
    # A value the offline store never saw (a push, a bug in a writer): newer, so Redis keeps it.
    original = row.assign(event_timestamp=row["event_timestamp"] + pd.Timedelta(seconds=2))
    row["annual_income"] += 1000.0
    row["event_timestamp"] += pd.Timedelta(seconds=1)
    built.store.write_to_online_store(view.name, row)
    try:
        check = skew_check(record, POLICY)
    finally:
        built.store.write_to_online_store(view.name, original)
    assert not check["passed"] and check["blocking"]
    assert "annual_income (1 of 50 entities)" in check["reason"]
    assert list(check["details"]["features"]) == ["annual_income"]
    assert check["observed"] == pytest.approx(1000.0)
    assert skew_check(record, POLICY)["passed"]  # restored: the failure was the changed value
