"""Benchmark: the feature store on this machine (issue 17).

    python benchmarks/bench_features.py                 # full demo (50 000 labels), 2 000 lookups x 3
    python benchmarks/bench_features.py --lookups 500   # shorter

Prints, side by side with anchors measured in the same run:
- the training-set build for the demo size: `get_historical_features` for every label row against
  the two views (duckdb offline store over Parquet), median of --repeats, after one warm-up;
- online lookup p50/p99 for ONE entity (an applicant and a loan, the service's 18 features) through
  Feast from a real redis-server (started here on loopback with a generated password) and from
  SQLite; anchors: one raw SQLite SELECT by key and one raw redis-py HGETALL, i.e. what the stores
  cost without Feast. Lookups run in-process (what a serving process calls), timed one by one.

The script prints figures; it asserts nothing. The load average is printed with them: the
machine is shared, so p99 is as much the host's as Feast's.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn, n: int) -> tuple[float, float]:
    fn(0)
    lat = []
    for i in range(n):
        started = time.perf_counter()
        fn(i)
        lat.append((time.perf_counter() - started) * 1000)
    return pct(lat, 0.5), pct(lat, 0.99)


def start_redis(base: Path) -> tuple[subprocess.Popen, int, str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    password = secrets.token_hex(16)
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--requirepass",
            password,
            "--dir",
            str(base),
        ],
        stdout=subprocess.DEVNULL,
    )
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            client.ping()
            return proc, port, password
        except redis.exceptions.ConnectionError:
            time.sleep(0.05)
    raise SystemExit("redis-server did not start")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import pandas as pd
    import redis

    from ml.data.demo import ensure_demo
    from ml.features import config, definitions, store
    from ml.features.record import demo_sources

    base = Path(tempfile.mkdtemp(prefix="bench-features-"))
    proc, port, password = start_redis(base)
    try:
        demo = ensure_demo(base / "demo")
        files = demo_sources(demo, base / "sources")
        sq_cfg = config.load("local", base / "sqlite")
        rd_cfg = config.load("local", base / "redis", online=f"127.0.0.1:{port},password={password}")
        store.apply(sq_cfg, files.directory)
        store.apply(rd_cfg, files.directory)
        sq, rd = store.open_store(sq_cfg), store.open_store(rd_cfg)
        entities = pd.read_parquet(files.entities)
        refs = store.service_refs(sq, definitions.SERVICE)
        store.historical(sq, entities, refs)  # warm-up
        builds = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            store.historical(sq, entities, refs)
            builds.append(time.perf_counter() - started)
        now = dt.datetime.now(dt.UTC)
        store.materialize(sq, sq_cfg, EPOCH, now)
        store.materialize(rd, rd_cfg, EPOCH, now)
        keys = entities[list(definitions.JOIN_KEYS)].tail(500).astype("int64").to_dict(orient="records")
        db = sqlite3.connect(base / "sqlite" / "online.db")
        table = f"{definitions.PROJECT}_loan_terms"  # Feast's table name: project_view
        raw_keys = [r[0] for r in db.execute(f"select distinct entity_key from {table}")]  # noqa: S608
        client = redis.Redis(host="127.0.0.1", port=port, password=password)
        redis_keys = client.keys("*")[:500]
        rows = []
        for _ in range(args.repeats):
            rows.append(
                {
                    "feast_redis": timed(
                        lambda i: store.online(rd, rd_cfg, refs, [keys[i % 500]]), args.lookups
                    ),
                    "feast_sqlite": timed(
                        lambda i: store.online(sq, sq_cfg, refs, [keys[i % 500]]), args.lookups
                    ),
                    "raw_redis_hgetall": timed(
                        lambda i: client.hgetall(redis_keys[i % len(redis_keys)]), args.lookups
                    ),
                    "raw_sqlite_select": timed(
                        lambda i: db.execute(
                            f"select feature_name, value from {table} where entity_key=?",  # noqa: S608
                            (raw_keys[i % len(raw_keys)],),
                        ).fetchall(),
                        args.lookups,
                    ),
                }
            )
        print(f"load average {os.getloadavg()[0]:.2f}; {len(entities)} label rows; redis-server on loopback")
        print(
            f"training set ({len(entities)} rows x {len(refs)} features, duckdb): "
            f"median {statistics.median(builds):.2f} s of {[round(b, 2) for b in builds]}"
        )
        print(f"online lookup, one entity, {args.lookups} x {args.repeats} (median of repeats):")
        for name in rows[0]:
            p50 = statistics.median(r[name][0] for r in rows)
            p99 = statistics.median(r[name][1] for r in rows)
            print(f"  {name:20} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
