"""Snapshot-level quality checks: volume, nulls, label classes, duplicate rows, freshness."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

import numpy as np
import pandas as pd

from gates.checks.labels import class_counts, label_key, positive_mask
from gates.checks.result import make_check
from ml.data.contract import Contract, column_label


def volume_checks(rows: int, reference_rows: int, policy: dict) -> list[dict]:
    fraction = rows / reference_rows if reference_rows else None
    return [
        make_check(
            "volume.min_rows",
            "volume",
            rows,
            policy["min_rows"],
            ">=",
            policy_key="data.volume.min_rows",
            details={"rows": rows},
        ),
        make_check(
            "volume.reference_fraction",
            "volume",
            fraction,
            policy["min_reference_fraction"],
            ">=",
            "" if reference_rows else "reference snapshot has no rows to compare with",
            policy_key="data.volume.min_reference_fraction",
            details={"rows": rows, "reference_rows": reference_rows},
        ),
    ]


def _null_count(frame: pd.DataFrame, column: str, file_nulls: dict[str, int] | None) -> int:
    """Cells missing in the file itself. A value that failed its dtype is a dtype violation
    (`contract.dtypes`), not a null as well, so typed-frame NaNs are counted only without `file_nulls`."""
    if file_nulls is not None and column in file_nulls:
        return file_nulls[column]
    return int(frame[column].isna().sum())


def null_checks(
    contract: Contract,
    current: pd.DataFrame,
    reference: pd.DataFrame,
    policy: dict,
    *,
    current_nulls: dict[str, int] | None = None,
    reference_nulls: dict[str, int] | None = None,
) -> list[dict]:
    """Non-nullable columns must have no nulls; nullable ones may not grow their share much.

    `current_nulls`/`reference_nulls`: per column, the cells empty in the file before typing.
    """
    checks = []
    rows = len(current)
    for col in contract.columns:
        if col.name not in current.columns:
            checks.append(
                make_check(
                    "nulls", "nulls", None, 0, "<=", "column missing (see contract checks)",
                    skipped=True, column=col.name,
                )
            )
            continue
        nulls = _null_count(current, col.name, current_nulls)
        share = nulls / rows if rows else 0.0
        if not col.nullable:
            checks.append(
                make_check(
                    "nulls",
                    "nulls",
                    share,
                    0.0,
                    "<=",
                    "no nulls" if not nulls else f"{nulls} null(s) in a non-nullable column",
                    column=col.name,
                    details={"nulls": nulls, "rows": rows, "nullable": False},
                )
            )
            continue
        ref_share = (
            _null_count(reference, col.name, reference_nulls) / len(reference)
            if col.name in reference.columns and len(reference)
            else 0.0
        )
        checks.append(
            make_check(
                "nulls",
                "nulls",
                share,
                ref_share + policy["nullable_max_increase"],
                "<=",
                column=col.name,
                policy_key="data.nulls.nullable_max_increase",
                details={"nulls": nulls, "rows": rows, "nullable": True, "reference_share": ref_share},
            )
        )
    return checks


def label_checks(contract: Contract, current: pd.DataFrame, policy: dict) -> list[dict]:
    keys = {"classes": "data.labels.min_classes", "positive_class": "data.labels.min_positive_rows"}
    if contract.label not in current.columns:
        reason = f"label column {column_label(contract.label)} missing"
        return [
            make_check(
                "labels.classes", "labels", None, policy["min_classes"], ">=", reason,
                column=contract.label, policy_key=keys["classes"],
            ),
            make_check(
                "labels.positive_class", "labels", None, policy["min_positive_rows"], ">=", reason,
                column=contract.label, policy_key=keys["positive_class"],
            ),
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
            column=contract.label,
            policy_key=keys["classes"],
            details={"classes": counts},
        ),
        make_check(
            "labels.positive_class",
            "labels",
            positives,
            policy["min_positive_rows"],
            ">=",
            f"{positives} row(s) of positive class {key!r}",
            column=contract.label,
            policy_key=keys["positive_class"],
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
        policy_key="data.duplicates.max_rate",
        details={"duplicate_rows": dupes, "rows": rows},
    )


def _newest(frame: pd.DataFrame, column: str) -> pd.Timestamp | None:
    if column not in frame.columns:
        return None
    newest = frame[column].max()
    return None if pd.isna(newest) else newest


def _iso(moment: pd.Timestamp | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _age_check(column: str, newest: pd.Timestamp | None, limit: float | None, as_of: datetime) -> dict:
    """Hours from the newest current timestamp to the gate's `as_of` (not checked without a limit)."""
    if limit is None:
        return make_check(
            "freshness.max_age_hours", "freshness", None, None, "<=",
            "policy sets no max_age_hours; age not checked",
            skipped=True, column=column, details={"newest": _iso(newest)},
        )
    age = (pd.Timestamp(as_of) - newest).total_seconds() / 3600 if newest is not None else None
    return make_check(
        "freshness.max_age_hours",
        "freshness",
        age,
        limit,
        "<=",
        "" if newest is not None else f"no valid {column_label(column)} timestamps in the current snapshot",
        column=column,
        policy_key="data.freshness.max_age_hours",
        details={"newest": _iso(newest), "as_of": as_of.isoformat()},
    )


def _vs_reference_check(column: str, newest: pd.Timestamp | None, newest_ref: pd.Timestamp | None) -> dict:
    """The current snapshot must not be older than the reference it is compared with."""
    known = newest is not None and newest_ref is not None
    lead = (newest - newest_ref).total_seconds() / 3600 if known else None
    return make_check(
        "freshness.vs_reference_hours",
        "freshness",
        lead,
        0.0,
        ">=",
        "" if lead is not None else f"no valid {column_label(column)} timestamps to compare",
        column=column,
        policy_key="data.freshness.require_not_older_than_reference",
        details={"newest_current": _iso(newest), "newest_reference": _iso(newest_ref)},
    )


def freshness_checks(
    contract: Contract, current: pd.DataFrame, reference: pd.DataFrame, policy: dict, as_of: datetime
) -> list[dict]:
    if not contract.timestamp:
        return [
            make_check(
                "freshness", "freshness", None, None, "<=",
                "contract names no timestamp column; freshness not checked", skipped=True,
            )
        ]
    column = contract.timestamp
    newest = _newest(current, column)
    checks = [_age_check(column, newest, policy["max_age_hours"], as_of)]
    if policy["require_not_older_than_reference"]:
        checks.append(_vs_reference_check(column, newest, _newest(reference, column)))
    return checks
