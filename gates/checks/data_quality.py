"""Snapshot-level quality checks: volume, nulls, label classes, duplicate rows, freshness."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np
import pandas as pd

from gates.checks.labels import class_counts, label_key, positive_mask
from gates.checks.result import make_check
from ml.data.contract import Contract


def volume_checks(rows: int, reference_rows: int, policy: dict) -> list[dict]:
    fraction = rows / reference_rows if reference_rows else None
    return [
        make_check("volume.min_rows", "volume", rows, policy["min_rows"], ">=", details={"rows": rows}),
        make_check(
            "volume.reference_fraction",
            "volume",
            fraction,
            policy["min_reference_fraction"],
            ">=",
            "" if reference_rows else "reference snapshot has no rows to compare with",
            details={"rows": rows, "reference_rows": reference_rows},
        ),
    ]


def null_checks(
    contract: Contract, current: pd.DataFrame, reference: pd.DataFrame, policy: dict
) -> list[dict]:
    """Non-nullable columns must have no nulls; nullable ones may not grow their share much."""
    checks = []
    rows = len(current)
    for col in contract.columns:
        name = f"nulls.{col.name}"
        if col.name not in current.columns:
            checks.append(
                make_check(name, "nulls", None, 0, "<=", "column missing (see contract checks)", skipped=True)
            )
            continue
        nulls = int(current[col.name].isna().sum())
        share = nulls / rows if rows else 0.0
        if not col.nullable:
            checks.append(
                make_check(
                    name,
                    "nulls",
                    share,
                    0.0,
                    "<=",
                    "no nulls" if not nulls else f"{nulls} null(s) in a non-nullable column",
                    details={"nulls": nulls, "rows": rows, "nullable": False},
                )
            )
            continue
        ref_share = (
            float(reference[col.name].isna().mean())
            if col.name in reference.columns and len(reference)
            else 0.0
        )
        limit = ref_share + policy["nullable_max_increase"]
        checks.append(
            make_check(
                name,
                "nulls",
                share,
                limit,
                "<=",
                details={"nulls": nulls, "rows": rows, "nullable": True, "reference_share": ref_share},
            )
        )
    return checks


def label_checks(contract: Contract, current: pd.DataFrame, policy: dict) -> list[dict]:
    if contract.label not in current.columns:
        reason = f"label column {contract.label!r} missing"
        return [
            make_check("labels.classes", "labels", None, policy["min_classes"], ">=", reason),
            make_check("labels.positive_class", "labels", None, policy["min_positive_rows"], ">=", reason),
        ]
    labels = current[contract.label]
    counts = class_counts(labels)
    positives = int(positive_mask(labels, contract.positive_class).sum())
    key = label_key(contract.positive_class)
    return [
        make_check(
            "labels.classes",
            "labels",
            len(counts),
            policy["min_classes"],
            ">=",
            f"{len(counts)} class(es) present: {', '.join(counts) or 'none'}",
            details={"classes": counts},
        ),
        make_check(
            "labels.positive_class",
            "labels",
            positives,
            policy["min_positive_rows"],
            ">=",
            f"{positives} row(s) of positive class {key!r}",
            details={"positive_class": key},
        ),
    ]


_MIX = np.uint64(0x9E3779B97F4A7C15)
_CANONICAL_NAN = np.float64("nan").view(np.uint64)
_HASH_BLOCK = 1 << 20


def _column_words(series: pd.Series) -> np.ndarray:
    """One uint64 per value such that equal values give equal words (float64 columns: their bits)."""
    if series.dtype == np.float64:
        return series.to_numpy()
    return pd.util.hash_pandas_object(series, index=False).to_numpy()


def _mix_block(columns: list[np.ndarray], start: int, stop: int, out: np.ndarray) -> None:
    acc = out[start:stop]
    for values in columns:
        if values.dtype == np.float64:
            x = values[start:stop] + 0.0  # a copy, with -0.0 turned into 0.0 (they compare equal)
            words = x.view(np.uint64)
            words[np.isnan(x)] = _CANONICAL_NAN  # every NaN alike, as pandas' duplicated() has it
        else:
            words = values[start:stop]
        acc ^= words
        acc *= _MIX
        acc ^= acc >> np.uint64(29)


def row_hashes(frame: pd.DataFrame, workers: int | None = None) -> np.ndarray:
    """A 64-bit hash per row, computed in row blocks across threads (numpy releases the GIL)."""
    columns = [_column_words(frame[c]) for c in frame.columns]
    out = np.zeros(len(frame), dtype=np.uint64)
    blocks = [(i, min(i + _HASH_BLOCK, len(frame))) for i in range(0, len(frame), _HASH_BLOCK)]
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda b: _mix_block(columns, b[0], b[1], out), blocks))
    return out


def duplicate_rows(frame: pd.DataFrame) -> int:
    """Rows identical to an earlier row, exactly, in time linear in the rows.

    pandas' `duplicated()` factorises every column (seconds per 10 M-row float column). Hashing
    rows once and re-checking with `duplicated()` only the rows whose hash repeats gives the same
    exact count: equal rows always hash alike, and a hash collision only adds a candidate.
    """
    if len(frame) < 2 or frame.shape[1] == 0:
        return 0
    hashes = row_hashes(frame)
    ordered = np.sort(hashes)
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    if not repeated.size:
        return 0
    candidates = frame[np.isin(hashes, np.unique(repeated))]
    return int(candidates.duplicated().sum())


def duplicate_check(current: pd.DataFrame, policy: dict) -> dict:
    rows = len(current)
    dupes = duplicate_rows(current)
    rate = dupes / rows if rows else 0.0
    return make_check(
        "duplicates.rate",
        "duplicates",
        rate,
        policy["max_rate"],
        "<=",
        details={"duplicate_rows": dupes, "rows": rows},
    )


def _newest(frame: pd.DataFrame, column: str) -> pd.Timestamp | None:
    if column not in frame.columns:
        return None
    newest = frame[column].max()
    return None if pd.isna(newest) else newest


def freshness_checks(
    contract: Contract, current: pd.DataFrame, reference: pd.DataFrame, policy: dict, as_of: datetime
) -> list[dict]:
    if not contract.timestamp:
        return [
            make_check(
                "freshness",
                "freshness",
                None,
                None,
                "<=",
                "contract names no timestamp column; freshness not checked",
                skipped=True,
            )
        ]
    column = contract.timestamp
    newest = _newest(current, column)
    newest_ref = _newest(reference, column)
    checks = []
    limit = policy["max_age_hours"]
    if limit is None:
        checks.append(
            make_check(
                "freshness.max_age_hours",
                "freshness",
                None,
                None,
                "<=",
                "policy sets no max_age_hours; age not checked",
                skipped=True,
                details={"newest": newest.isoformat() if newest is not None else None},
            )
        )
    else:
        age = (pd.Timestamp(as_of) - newest).total_seconds() / 3600 if newest is not None else None
        checks.append(
            make_check(
                "freshness.max_age_hours",
                "freshness",
                age,
                limit,
                "<=",
                "" if newest is not None else f"no valid {column} timestamps in the current snapshot",
                details={
                    "newest": newest.isoformat() if newest is not None else None,
                    "as_of": as_of.isoformat(),
                },
            )
        )
    if policy["require_not_older_than_reference"]:
        lead = (
            (newest - newest_ref).total_seconds() / 3600
            if newest is not None and newest_ref is not None
            else None
        )
        checks.append(
            make_check(
                "freshness.vs_reference_hours",
                "freshness",
                lead,
                0.0,
                ">=",
                "" if lead is not None else f"no valid {column} timestamps to compare",
                details={
                    "newest_current": newest.isoformat() if newest is not None else None,
                    "newest_reference": newest_ref.isoformat() if newest_ref is not None else None,
                },
            )
        )
    return checks
