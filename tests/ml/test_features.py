"""The feature store offline: point-in-time training sets, plan/apply, and bad input named.

Real Feast (duckdb offline store over Parquet, file registry, SQLite online store) in temp dirs.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from ml.data.contract import load_snapshot
from ml.features import config, definitions, sources, store, training_set
from sluice.errors import SluiceError
from tests.feature_store import SmallStore, small_store

T = lambda text: pd.Timestamp(text, tz="UTC")  # noqa: E731


@pytest.fixture(scope="module")
def applied(tmp_path_factory: pytest.TempPathFactory) -> SmallStore:
    return small_store(tmp_path_factory.mktemp("features"))


def test_training_set_from_the_store_is_the_demo_snapshot_cell_for_cell(applied: SmallStore, tmp_path: Path):
    files = training_set.build(
        applied.store, applied.sources, applied.contract, tmp_path, definitions.SERVICE
    )
    for built, snapshot in ((files.current, applied.demo.current), (files.reference, applied.demo.reference)):
        got, problems, _ = load_snapshot(built, applied.contract)
        want, _, _ = load_snapshot(snapshot, applied.contract)
        assert problems == []
        got["application_date"] = got["application_date"].astype(want["application_date"].dtype)
        pd.testing.assert_frame_equal(got, want)


def test_no_later_value_leaks_into_the_training_set(applied: SmallStore):
    """Every 10th applicant has a profile row stamped 60 days after the application with 5 more
    delinquencies: the point-in-time join must give the earlier value, for every one of them."""
    entities = pd.read_parquet(applied.sources.entities)
    joined = store.historical(applied.store, entities, ["applicant_profile:num_delinquencies_2y"])
    profile = pd.read_parquet(applied.sources.view("applicant_profile"))
    first = profile.sort_values(definitions.EVENT_TIMESTAMP).drop_duplicates("applicant_id", keep="first")
    expected = entities.merge(first, on="applicant_id", suffixes=("", "_first"))["num_delinquencies_2y"]
    trapped = profile["applicant_id"].duplicated(keep=False).sum() // 2
    assert trapped == len(entities) // sources.TRAP_EVERY
    assert joined["num_delinquencies_2y"].tolist() == expected.tolist()


def test_point_in_time_hand_made_case(tmp_path: Path):
    """Applicant 1 has values stamped Jan 1 (50k) and Mar 1 (99k); 2 has one row past a 90-day ttl;
    3 has two rows with the same event time, the later-created one wins."""
    from feast import Entity, FeatureView, Field, FileSource
    from feast.types import Float64
    from feast.value_type import ValueType

    rows = pd.DataFrame(
        {
            "applicant_id": [1, 1, 2, 3, 3],
            "annual_income": [50_000.0, 99_000.0, 70_000.0, 10.0, 20.0],
            "event_timestamp": [
                T("2024-01-01"),
                T("2024-03-01"),
                T("2024-01-01"),
                T("2024-01-01"),
                T("2024-01-01"),
            ],
            "created": [T("2024-01-02"), T("2024-03-02"), T("2024-01-02"), T("2024-01-02"), T("2024-01-05")],
        }
    )
    rows.to_parquet(tmp_path / "profile.parquet", index=False)
    applicant = Entity(name="applicant", join_keys=["applicant_id"], value_type=ValueType.INT64)
    view = FeatureView(
        name="profile",
        entities=[applicant],
        ttl=timedelta(days=90),
        schema=[Field(name="annual_income", dtype=Float64)],
        source=FileSource(
            path=str(tmp_path / "profile.parquet"),
            timestamp_field="event_timestamp",
            created_timestamp_column="created",
        ),
    )
    cfg = config.load("local", tmp_path / "home")
    feature_store = store.open_store(cfg)
    feature_store.apply([applicant, view])
    entity_df = pd.DataFrame(
        {
            "applicant_id": [1, 1, 1, 2, 3],
            "event_timestamp": [
                T("2024-02-01"),
                T("2024-03-01"),
                T("2023-12-31"),
                T("2024-06-01"),
                T("2024-02-01"),
            ],
        }
    )
    out = store.historical(feature_store, entity_df, ["profile:annual_income"])
    got = [None if pd.isna(v) else v for v in out["annual_income"]]
    # between the stamps: the earlier value, never the later 99k; exactly at the later stamp it
    # counts (event_ts <= entity ts); before any value and past the ttl: null, the row kept.
    assert got == [50_000.0, 99_000.0, None, None, 20.0]
    assert out["event_timestamp"].tolist() == entity_df["event_timestamp"].tolist()  # entity_df order


def test_plan_shows_changes_without_writing_the_registry(applied: SmallStore, tmp_path: Path):
    registry = applied.config.registry_file
    before = registry.read_bytes()
    assert store.plan(applied.config, applied.sources.directory) == []
    # The same sources elsewhere: the data sources' paths change, nothing is written.
    moved = tmp_path / "moved"
    moved.mkdir()
    for view in definitions.VIEWS:
        (moved / applied.sources.view(view).name).write_bytes(applied.sources.view(view).read_bytes())
    changes = store.plan(applied.config, moved)
    assert {str(c) for c in changes} >= {
        "Updated feature view applicant_profile",
        "Updated feature view loan_terms",
    }
    assert registry.read_bytes() == before
    fresh = config.load("local", tmp_path / "fresh")
    assert len(store.plan(fresh, applied.sources.directory)) == 8
    assert not (tmp_path / "fresh" / "registry.db").exists()


def _registered_views(cfg) -> list[str]:
    return [v.name for v in store.open_store(cfg).list_feature_views()] if cfg.registry_file.exists() else []


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "loan_terms.parquet").unlink(), "feature view loan_terms: source file not found"),
        (
            lambda d: (
                pd.read_parquet(d / "applicant_profile.parquet")
                .drop(columns=["region"])
                .to_parquet(d / "applicant_profile.parquet")
            ),
            "has no column 'region'",
        ),
        (
            lambda d: (
                pd.read_parquet(d / "loan_terms.parquet")
                .astype({"loan_term_months": str})
                .to_parquet(d / "loan_terms.parquet")
            ),
            "column 'loan_term_months' is string",
        ),
    ],
    ids=["missing-file", "missing-column", "wrong-type"],
)
def test_a_bad_source_is_named_and_nothing_is_registered(
    applied: SmallStore, tmp_path: Path, damage, message
):
    broken = tmp_path / "sources"
    broken.mkdir()
    for view in definitions.VIEWS:
        (broken / applied.sources.view(view).name).write_bytes(applied.sources.view(view).read_bytes())
    damage(broken)
    cfg = config.load("local", tmp_path / "home")
    with pytest.raises(SluiceError, match=message):
        store.apply(cfg, broken)
    assert _registered_views(cfg) == []


def test_redis_unreachable_is_named_and_nothing_is_registered(applied: SmallStore, tmp_path: Path):
    from tests.conftest import free_port

    address = f"127.0.0.1:{free_port()}"
    cfg = config.load("local", tmp_path / "home", online=f"{address},password=x")
    with pytest.raises(SluiceError, match=f"online store Redis at {address} is unreachable"):
        store.apply(cfg, applied.sources.directory)
    assert _registered_views(cfg) == []


@pytest.mark.parametrize(
    "refs, drop, message",
    [
        (["loan_terms:nope"], None, "feature view loan_terms has no feature 'nope'"),
        (["nope:loan_amount"], None, "no feature view 'nope' registered"),
        (["loan_amount"], None, "is not VIEW:FEATURE"),
        (["loan_terms:loan_amount"], "event_timestamp", "entity dataframe has no 'event_timestamp' column"),
        (["loan_terms:loan_amount"], "loan_id", "entity dataframe has no join key column 'loan_id'"),
    ],
)
def test_bad_training_set_requests_are_named(applied: SmallStore, refs, drop, message):
    entities = pd.read_parquet(applied.sources.entities).head(5)
    if drop:
        entities = entities.drop(columns=[drop])
    with pytest.raises(SluiceError, match=message):
        store.historical(applied.store, entities, refs)


def test_an_unset_variable_in_the_store_file_is_refused_by_name(tmp_path: Path, monkeypatch):
    for name in (
        "FEAST_REGISTRY_USER",
        "FEAST_REGISTRY_PASSWORD",
        "FEAST_REGISTRY_HOST",
        "FEAST_REGISTRY_DB",
    ):
        monkeypatch.setenv(name, "x")
    monkeypatch.delenv("REDIS_HOST", raising=False)
    with pytest.raises(SluiceError, match="variable REDIS_HOST is not set"):
        config.load("cluster", tmp_path)


def test_the_cluster_store_file_parses_into_feasts_config(tmp_path: Path, monkeypatch):
    values = {
        "FEAST_REGISTRY_USER": "feast",
        "FEAST_REGISTRY_PASSWORD": "p",
        "FEAST_REGISTRY_HOST": "pg:5432",
        "FEAST_REGISTRY_DB": "feast_registry",
        "REDIS_HOST": "redis",
        "REDIS_PORT": "6379",
        "REDIS_PASSWORD": "0a1b",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    cfg = config.load("cluster", tmp_path)
    repo = cfg.repo_config()
    assert cfg.redis_address == "redis:6379" and cfg.registry_file is None
    assert repo.online_store.type == "redis" and repo.offline_store.type == "duckdb"
    assert repo.registry.path.startswith("postgresql+psycopg2://feast:p@pg:5432/")


def test_plan_needs_no_online_store_variables(tmp_path: Path, monkeypatch):
    """A pull request's check holds only the registry credential: plan must not ask for Redis's."""
    for name in (
        "FEAST_REGISTRY_USER",
        "FEAST_REGISTRY_PASSWORD",
        "FEAST_REGISTRY_HOST",
        "FEAST_REGISTRY_DB",
    ):
        monkeypatch.setenv(name, "x: {y}")  # YAML syntax in a value stays a string
    for name in ("REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    cfg = config.load("cluster", tmp_path, need_online=False)
    assert cfg.online_type == "sqlite" and cfg.redis_address is None
    assert cfg.doc["registry"]["path"] == "postgresql+psycopg2://x: {y}:x: {y}@x: {y}/x: {y}"
