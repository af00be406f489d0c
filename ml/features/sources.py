"""The Parquet sources behind the feature views: made from the demo, and checked before `apply`.

Feast registers a source without reading it (a missing file or a wrong schema surfaces only when a
training set is built), so Sluice checks every source first: the file is there and readable, and
it has the timestamps, the join key and every feature with a type the view can hold. That is what
makes "nothing registered" true for a bad source.

The demo split: every application becomes one applicant profile row stamped up to 30 days before
it and one loan terms row stamped at it. Every 10th applicant also gets a later profile row (60
days after the application, 5 more delinquencies): a point-in-time join that leaks picks it up,
so the demo doubles as a leakage trap, and it is the row the online store serves after
materialization, which the skew check must tell apart from skew.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ml.data.demo import DEFAULT_SEED, DemoFiles
from ml.features.definitions import CREATED_TIMESTAMP, EVENT_TIMESTAMP, VIEWS, source_path
from sluice.atomic import write_bytes
from sluice.errors import SluiceError

ENTITY_FILE = "entities.parquet"
PERIOD = "period"  # which demo snapshot an entity row came from: "reference" or "current"
TRAP_EVERY = 10
TRAP_DELAY = pd.Timedelta(days=60)
TRAP_DELINQUENCIES = 5
CREATED = pd.Timestamp("2024-12-01", tz="UTC")
# Feast type name -> the Arrow type predicates a source column may satisfy.
ARROW_KINDS = {
    "Int64": pa.types.is_integer,
    "Float64": lambda t: pa.types.is_floating(t) or pa.types.is_integer(t),
    "String": lambda t: pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_dictionary(t),
    "Bool": pa.types.is_boolean,
}


@dataclass(frozen=True)
class SourceFiles:
    directory: Path

    def view(self, name: str) -> Path:
        return source_path(self.directory, name)

    @property
    def entities(self) -> Path:
        return self.directory / ENTITY_FILE


def _read_demo_csv(path: Path, period: str) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["application_date"], true_values=["true"], false_values=["false"])
    frame["application_date"] = pd.to_datetime(frame["application_date"], utc=True)
    frame[PERIOD] = period
    return frame


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    """Atomically: a reader (or a killed writer) never sees half a source or snapshot."""
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), sink)
    write_bytes(path, sink.getvalue().to_pybytes())


def write_demo_sources(demo: DemoFiles, out_dir: str | Path, seed: int = DEFAULT_SEED) -> SourceFiles:
    """Split the demo snapshots into the two views' sources plus the entity (label) frame."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    df = pd.concat(
        [_read_demo_csv(demo.reference, "reference"), _read_demo_csv(demo.current, "current")],
        ignore_index=True,
    )
    n = len(df)
    rng = np.random.default_rng(seed)
    df["applicant_id"] = np.arange(1, n + 1, dtype=np.int64)
    df["loan_id"] = np.arange(1_000_001, 1_000_001 + n, dtype=np.int64)
    stamps = df["application_date"]
    files = SourceFiles(out)

    applicant = df[["applicant_id", *VIEWS["applicant_profile"][3]]].copy()
    applicant[EVENT_TIMESTAMP] = stamps - pd.to_timedelta(rng.integers(0, 30 * 86400, n), unit="s")
    applicant[CREATED_TIMESTAMP] = CREATED
    later = applicant.iloc[::TRAP_EVERY].copy()
    later[EVENT_TIMESTAMP] = stamps.iloc[::TRAP_EVERY] + TRAP_DELAY
    later["num_delinquencies_2y"] += TRAP_DELINQUENCIES
    applicant = pd.concat([applicant, later], ignore_index=True).sort_values(EVENT_TIMESTAMP, kind="stable")
    write_parquet(applicant, files.view("applicant_profile"))

    loan = df[["loan_id", *VIEWS["loan_terms"][3]]].copy()
    loan[EVENT_TIMESTAMP] = stamps
    loan[CREATED_TIMESTAMP] = CREATED
    write_parquet(loan, files.view("loan_terms"))

    entities = df[["applicant_id", "loan_id", "sex", "default", PERIOD]].copy()
    entities[EVENT_TIMESTAMP] = stamps
    write_parquet(entities, files.entities)
    return files


def check_source(path: Path, view: str) -> None:
    """SluiceError naming the file and the column when a view's source cannot serve it."""
    _entity, key, _ttl, features = VIEWS[view]
    if not path.is_file():
        raise SluiceError(f"feature view {view}: source file not found: {path}")
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowException) as exc:
        raise SluiceError(f"feature view {view}: source {path} is not readable Parquet ({exc})") from exc
    wanted = {
        EVENT_TIMESTAMP: pa.types.is_timestamp,
        CREATED_TIMESTAMP: pa.types.is_timestamp,
        key: pa.types.is_integer,
        **{name: ARROW_KINDS[kind] for name, kind in features.items()},
    }
    for column, accepts in wanted.items():
        if column not in schema.names:
            raise SluiceError(f"feature view {view}: source {path} has no column {column!r}")
        if not accepts(schema.field(column).type):
            raise SluiceError(
                f"feature view {view}: source {path} column {column!r} is {schema.field(column).type}, "
                "not a type the view declares"
            )


def check_sources(source_dir: str | Path) -> None:
    for view in VIEWS:
        check_source(source_path(source_dir, view), view)
