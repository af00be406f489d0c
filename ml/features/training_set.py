"""A training set from the feature store, in the shape the data contract describes.

The entity frame holds the keys, the label, the audited attribute and the label's timestamp; the
store adds every feature of the service as of that timestamp. The result is renamed into the
contract's columns (the event timestamp is the contract's timestamp column, the keys are dropped)
so the data contract, the data gate and everything after them check it exactly as they check a
snapshot: a store that served a wrong type or a null where the contract forbids one is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from ml.data.contract import Contract
from ml.features import definitions, store
from ml.features.sources import PERIOD, SourceFiles, write_parquet


@dataclass(frozen=True)
class TrainingFiles:
    current: Path
    reference: Path


def to_contract_frame(joined: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    frame = joined.rename(columns={definitions.EVENT_TIMESTAMP: contract.timestamp or "event_timestamp"})
    return frame[[c for c in contract.column_names if c in frame.columns]]


def build(
    feature_store: Any, sources: SourceFiles, contract: Contract, out_dir: Path, service: str
) -> TrainingFiles:
    """Join the demo's entity frame against the service; write the current and reference periods
    (the periods of the demo snapshots) as Parquet snapshots the pipeline trains and drifts on."""
    entities = pd.read_parquet(sources.entities)
    joined = store.historical(feature_store, entities, store.service_refs(feature_store, service))
    out_dir.mkdir(parents=True, exist_ok=True)
    files = TrainingFiles(out_dir / "current.parquet", out_dir / "reference.parquet")
    for period, path in (("current", files.current), ("reference", files.reference)):
        part = joined[joined[PERIOD] == period]
        write_parquet(to_contract_frame(part, contract), path)
    return files
