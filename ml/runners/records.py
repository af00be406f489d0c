"""Run records under `<home>/runs/`: one per run key that registered, plus `last-run.json`.

A record is what an unchanged re-run answers from, and what benchmarks read their timings from.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sluice.atomic import write_json

LAST_RUN = "last-run.json"


def record_path(home_root: Path, key: str) -> Path:
    return home_root / "runs" / f"{key}.json"


def read(home_root: Path, key: str) -> dict | None:
    try:
        return json.loads(record_path(home_root, key).read_text())
    except (OSError, ValueError):
        return None


def write(home_root: Path, record: dict[str, Any]) -> None:
    """The run key's record (what the fast path reads); never the fast path's own view of it."""
    stored = {k: v for k, v in record.items() if k != "fast_path"}
    write_json(record_path(home_root, record["run_key"]), stored)


def write_last(home_root: Path, record: dict[str, Any]) -> None:
    write_json(home_root / "runs" / LAST_RUN, record)
