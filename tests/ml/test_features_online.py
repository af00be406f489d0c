"""Online features: materialized into a real redis-server (the session's) and into SQLite, looked up
by entity key, equal to each other and to the offline store as of the materialization; a
materialization killed midway and run again leaves no duplicates."""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ml.features import definitions, store
from tests.feature_store import SmallStore, small_store

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def as_of() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def on_redis(redis_server: dict, tmp_path_factory, as_of) -> SmallStore:
    built = small_store(tmp_path_factory.mktemp("redis-store"), online=redis_server["connection"])
    store.materialize(built.store, built.config, EPOCH, as_of)
    return built


@pytest.fixture(scope="module")
def on_sqlite(tmp_path_factory, as_of) -> SmallStore:
    built = small_store(tmp_path_factory.mktemp("sqlite-store"))
    store.materialize(built.store, built.config, EPOCH, as_of)
    return built


def _rows(built: SmallStore, n: int = 25) -> list[dict[str, int]]:
    entities = pd.read_parquet(built.sources.entities)
    return entities[list(definitions.JOIN_KEYS)].head(n).astype("int64").to_dict(orient="records")


def test_redis_and_sqlite_serve_the_latest_values_the_offline_store_holds(on_redis, on_sqlite, as_of):
    refs = store.service_refs(on_redis.store, definitions.SERVICE)
    rows = _rows(on_redis)
    from_redis = store.online(on_redis.store, on_redis.config, refs, rows)
    from_sqlite = store.online(on_sqlite.store, on_sqlite.config, refs, rows)
    assert from_redis == from_sqlite
    offline = store.historical(on_redis.store, pd.DataFrame(rows).assign(event_timestamp=as_of), refs)
    for ref in refs:
        feature = ref.partition(":")[2]
        want = [None if pd.isna(v) else v for v in offline[feature].tolist()]
        got = [None if v is None or (isinstance(v, float) and pd.isna(v)) else v for v in from_redis[feature]]
        assert got == want, feature
    # Applicant 1 is a leakage-trap applicant: online holds the later row (5 more delinquencies).
    profile = pd.read_parquet(on_redis.sources.view("applicant_profile"))
    first = profile[profile["applicant_id"] == 1].sort_values("event_timestamp")["num_delinquencies_2y"]
    assert from_redis["num_delinquencies_2y"][0] == first.iloc[-1] == first.iloc[0] + 5


def test_lookups_really_reach_the_redis_server(on_redis, redis_server):
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server["port"], password=redis_server["password"])
    before = client.info("commandstats").get("cmdstat_hmget", {}).get("calls", 0)
    refs = store.service_refs(on_redis.store, definitions.SERVICE)
    store.online(on_redis.store, on_redis.config, refs, _rows(on_redis, 3))
    after = client.info("commandstats")["cmdstat_hmget"]["calls"]
    assert client.dbsize() > 0 and after > before


def _counts(db: Path) -> dict[str, tuple[int, int]]:
    with sqlite3.connect(db) as con:
        return {
            view: con.execute(
                f"select count(*), count(distinct entity_key) from {definitions.PROJECT}_{view}"  # noqa: S608
            ).fetchone()
            for view in definitions.VIEWS
        }


@pytest.mark.slow
def test_materialization_killed_midway_and_rerun_completes_without_duplicates(tmp_path: Path):
    """The full demo (about 105k source rows): the run is killed once the first rows are written."""
    from ml.data.demo import ensure_demo
    from ml.features import config
    from ml.features.record import demo_sources

    home = tmp_path / "home"
    demo = ensure_demo(home / "data" / "credit-default")
    files = demo_sources(demo, home / "data" / "feature-sources")
    cfg = config.load("local", home / "features")
    store.apply(cfg, files.directory)
    command = [sys.executable, "-m", "sluice", "features", "materialize", "--home", str(home)]
    proc = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    db = home / "features" / "online.db"
    deadline = time.monotonic() + 300
    written = 0
    while time.monotonic() < deadline and proc.poll() is None and not written:
        try:
            written = sum(rows for rows, _ in _counts(db).values())
        except sqlite3.Error:
            written = 0
        time.sleep(0.05)
    assert proc.poll() is None, "materialization finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = _counts(db)
    entities = len(pd.read_parquet(files.entities))
    assert sum(rows for rows, _ in killed.values()) < entities * 18  # killed midway, really
    feature_store = store.open_store(cfg)
    for _ in range(2):  # the re-run completes; a third run changes nothing
        store.materialize(feature_store, cfg, EPOCH, dt.datetime.now(dt.UTC))
        counts = _counts(db)
        for view, (_e, _k, _t, features) in definitions.VIEWS.items():
            assert counts[view] == (entities * len(features), entities), view
