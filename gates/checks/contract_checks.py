"""Does the current snapshot honour its data contract? Each kind of violation is one check.

`ml.data.contract.coerce_to_contract` finds what stops a column being typed (missing and extra
columns, values of the wrong type); ranges, allowed categories and infinities are judged here on
the typed frame. A violation is a failed check with examples, never an exception: a readable
file that breaks its contract must leave evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from gates.checks.drift import as_float_array
from gates.checks.result import make_check
from ml.data.contract import Column, Contract, column_label

MAX_EXAMPLES = 5


def _names(columns: list[str]) -> str:
    return ", ".join(column_label(c) for c in columns)


def _count_check(name: str, count: int, ok: str, bad: str, details: dict | None) -> dict:
    """A contract check: `count` violations, none allowed; `bad` says what they were."""
    return make_check(
        name, "contract", count, 0, "<=", bad if count else ok, details=details if count else None
    )


def column_checks(contract: Contract, raw_columns: list[str]) -> list[dict]:
    present = [str(c) for c in raw_columns]
    missing = [c for c in contract.column_names if c not in present]
    extra = [c for c in present if c not in contract.column_names]
    return [
        _count_check(
            "contract.required_columns",
            len(missing),
            "all contract columns present",
            f"missing column(s): {_names(missing)}",
            {"missing": missing},
        ),
        _count_check(
            "contract.unexpected_columns",
            len(extra),
            "no columns outside the contract",
            f"unexpected column(s): {_names(extra)}",
            {"unexpected": extra},
        ),
    ]


def dtype_check(problems: list[str]) -> dict:
    """Values that are not of their column's type (each bad cell is reported here, and only here)."""
    type_problems = [p for p in problems if p.startswith("column ")]
    return _count_check(
        "contract.dtypes",
        len(type_problems),
        "every value has its contract type",
        "; ".join(type_problems[:MAX_EXAMPLES]),
        {"problems": type_problems},
    )


@dataclass
class ValueFindings:
    """Per-column violations found in the typed values: out of range, infinite, not an allowed category."""

    ranges: dict[str, dict] = field(default_factory=dict)
    infinite: dict[str, int] = field(default_factory=dict)
    categories: dict[str, dict] = field(default_factory=dict)


def _numeric_findings(col: Column, series: pd.Series, found: ValueFindings) -> None:
    values = as_float_array(series)
    infinite = int(np.count_nonzero(np.isinf(values)))
    if infinite:
        found.infinite[col.name] = infinite
    low = col.min if col.min is not None else -np.inf
    high = col.max if col.max is not None else np.inf
    below, above = int(np.count_nonzero(values < low)), int(np.count_nonzero(values > high))
    if below or above:
        outside = values[(values < low) | (values > high)]
        found.ranges[col.name] = {
            "below_min": below,
            "above_max": above,
            "min": col.min,
            "max": col.max,
            "examples": [float(v) for v in outside[:MAX_EXAMPLES]],
        }


def _category_findings(col: Column, series: pd.Series, found: ValueFindings) -> None:
    values = series.dropna()
    bad = values[~values.isin(list(col.categories or ()))]
    if len(bad):
        found.categories[col.name] = {
            "rows": len(bad),
            "values": sorted({str(v) for v in bad.unique()[:MAX_EXAMPLES]}),
            "allowed": list(col.categories or ()),
        }


def value_findings(contract: Contract, typed: pd.DataFrame) -> ValueFindings:
    found = ValueFindings()
    for col in contract.columns:
        if col.name not in typed.columns:
            continue
        if col.dtype in ("integer", "float"):
            _numeric_findings(col, typed[col.name], found)
        elif col.dtype == "category" and col.categories is not None:
            _category_findings(col, typed[col.name], found)
    return found


def value_checks(found: ValueFindings) -> list[dict]:
    out_of_range = sum(d["below_min"] + d["above_max"] for d in found.ranges.values())
    bad_categories = sum(d["rows"] for d in found.categories.values())
    infinite = sum(found.infinite.values())
    return [
        _count_check(
            "contract.ranges",
            out_of_range,
            "every numeric value within its contract range",
            "; ".join(
                f"{column_label(name)}: {d['below_min'] + d['above_max']} value(s) outside "
                f"[{d['min']}, {d['max']}]"
                for name, d in found.ranges.items()
            ),
            found.ranges,
        ),
        _count_check(
            "contract.categories",
            bad_categories,
            "every category value allowed by the contract",
            "; ".join(
                f"{column_label(name)}: {d['rows']} row(s) with {', '.join(map(repr, d['values']))}"
                for name, d in found.categories.items()
            ),
            found.categories,
        ),
        _count_check(
            "contract.finite_values",
            infinite,
            "no infinite numeric values",
            "; ".join(f"{column_label(name)}: {n} infinite value(s)" for name, n in found.infinite.items()),
            found.infinite,
        ),
    ]


def contract_checks(
    contract: Contract, raw_columns: list[str], problems: list[str], typed: pd.DataFrame
) -> list[dict]:
    """Columns, dtypes, ranges, categories and finiteness of the current snapshot."""
    return [
        *column_checks(contract, raw_columns),
        dtype_check(problems),
        *value_checks(value_findings(contract, typed)),
    ]


def reference_check(problems: list[str], rows: int) -> dict:
    """The reference must itself be usable, or drift against it means nothing."""
    issues = list(problems) + ([] if rows else ["reference snapshot has no rows"])
    return _count_check(
        "contract.reference_snapshot",
        len(issues),
        "reference snapshot honours the contract",
        "; ".join(issues[:MAX_EXAMPLES]),
        {"problems": issues},
    )
