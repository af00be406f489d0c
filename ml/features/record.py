"""A training run from the feature store, start to record: what `sluice run --features` prepares.

Before the pipeline starts, on the machine that starts it: the demo's Parquet sources are written
(once; the demo is seeded), the repository is applied (sources checked first), the training set is
built point-in-time correctly and written as the current and reference snapshots the pipeline
loads, and the online store is materialized up to now. The record (`features.json` beside the
snapshots) then travels to the pipeline as `feature_record_uri`: the log and register steps tag
the run and the version with the feature service and its digests, and the model gate's skew check
reads a sample of its entities from both stores.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pandas as pd

from ml.data.contract import Contract
from ml.data.demo import DemoFiles
from ml.features import config, definitions, facts, sources, store, training_set
from sluice.atomic import write_bytes
from sluice.errors import SluiceError

RECORD_NAME = "features.json"
SAMPLE_ROWS = 1000  # the skew check reads the first `model.skew.sample_size` of them
SAMPLE_SEED = 7


def demo_sources(demo: DemoFiles, source_dir: Path) -> sources.SourceFiles:
    """The demo's sources, written again only when the demo's bytes changed (a seeded split)."""
    files = sources.SourceFiles(source_dir)
    stamp = source_dir / "demo-sha256.json"
    wanted = json.dumps(demo.sha256s(), sort_keys=True)
    if files.entities.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return files
    files = sources.write_demo_sources(demo, source_dir)
    write_bytes(stamp, wanted.encode())
    return files


def prepare(
    demo: DemoFiles, contract: Contract, data_dir: Path, feature_home: Path
) -> tuple[training_set.TrainingFiles, Path]:
    """Sources, apply, training set, materialization, record; returns the snapshots and the record.

    The online store is the local SQLite one, or Redis when $SLUICE_FEATURE_REDIS names one (the
    record names only its address: a password stays in the environment the steps inherit)."""
    cfg = config.load("local", feature_home)
    files = demo_sources(demo, data_dir / "feature-sources")
    store.apply(cfg, files.directory)
    feature_store = store.open_store(cfg)
    out = data_dir / "features" / definitions.SERVICE
    snapshots = training_set.build(feature_store, files, contract, out, definitions.SERVICE)
    as_of = dt.datetime.now(dt.UTC).replace(microsecond=0)
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    store.materialize(feature_store, cfg, start, as_of)
    entities = pd.read_parquet(files.entities)
    current = entities[entities[sources.PERIOD] == "current"]
    sample = current.sample(n=min(SAMPLE_ROWS, len(current)), random_state=SAMPLE_SEED)
    record = {
        "facts": facts.service_facts(feature_store, cfg, definitions.SERVICE),
        "env": "local",
        "home": str(cfg.home),
        "online_store": cfg.redis_address or cfg.online_type,
        "as_of": as_of.isoformat(),
        "sample": sample[list(definitions.JOIN_KEYS)].astype("int64").to_dict(orient="records"),
    }
    path = out / RECORD_NAME
    write_bytes(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())
    return snapshots, path


def read_record(uri: str) -> dict[str, Any] | None:
    """The record a pipeline parameter points at; None for a model not trained from the store."""
    if not uri:
        return None
    path = Path(uri.removeprefix("file://"))
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise SluiceError(f"feature record {path} is not readable JSON ({exc})") from exc
