"""A small real feature store for tests: the seeded demo (few rows), split into the two views'
Parquet sources, applied to a file registry with a SQLite or a real Redis online store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.data.contract import Contract, load_contract
from ml.data.demo import DemoFiles, ensure_demo
from ml.features import config, store
from ml.features.config import StoreConfig
from ml.features.record import demo_sources
from ml.features.sources import SourceFiles

REFERENCE_ROWS, CURRENT_ROWS = 300, 200


@dataclass
class SmallStore:
    demo: DemoFiles
    contract: Contract
    sources: SourceFiles
    config: StoreConfig
    store: Any


def small_store(base: Path, online: str | None = None) -> SmallStore:
    demo = ensure_demo(base / "demo", reference_rows=REFERENCE_ROWS, current_rows=CURRENT_ROWS)
    sources = demo_sources(demo, base / "sources")
    cfg = config.load("local", base / "features", online)
    store.apply(cfg, sources.directory)
    return SmallStore(demo, load_contract(demo.contract), sources, cfg, store.open_store(cfg))
