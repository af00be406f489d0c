"""Does the current snapshot honour its data contract? Each kind of violation is one check.

`ml.data.contract.coerce_to_contract` finds what stops a column being typed (missing and extra
columns, values of the wrong type); ranges, allowed categories and infinities are judged here on
the typed frame. A violation is a failed check with examples, never an exception: a readable
file that breaks its contract must leave evidence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gates.checks.drift import as_float_array
from gates.checks.result import make_check
from ml.data.contract import Contract

MAX_EXAMPLES = 5


def _column_problems(problems: list[str]) -> list[str]:
    return [p for p in problems if p.startswith("column ")]


def contract_checks(
    contract: Contract, raw_columns: list[str], problems: list[str], typed: pd.DataFrame
) -> list[dict]:
    present = [str(c) for c in raw_columns]
    missing = [c for c in contract.column_names if c not in present]
    extra = [c for c in present if c not in contract.column_names]
    checks = [
        make_check(
            "contract.required_columns",
            "contract",
            len(missing),
            0,
            "<=",
            "all contract columns present" if not missing else f"missing column(s): {', '.join(missing)}",
            details={"missing": missing} if missing else None,
        ),
        make_check(
            "contract.unexpected_columns",
            "contract",
            len(extra),
            0,
            "<=",
            "no columns outside the contract" if not extra else f"unexpected column(s): {', '.join(extra)}",
            details={"unexpected": extra} if extra else None,
        ),
    ]
    type_problems = _column_problems(problems)
    checks.append(
        make_check(
            "contract.dtypes",
            "contract",
            len(type_problems),
            0,
            "<=",
            "every value has its contract type"
            if not type_problems
            else "; ".join(type_problems[:MAX_EXAMPLES]),
            details={"problems": type_problems} if type_problems else None,
        )
    )

    range_details: dict[str, dict] = {}
    finite_details: dict[str, int] = {}
    category_details: dict[str, dict] = {}
    for col in contract.columns:
        if col.name not in typed.columns:
            continue
        series = typed[col.name]
        if col.dtype in ("integer", "float"):
            values = as_float_array(series)
            infinite = int(np.count_nonzero(np.isinf(values)))
            if infinite:
                finite_details[col.name] = infinite
            below = int(np.count_nonzero(values < col.min)) if col.min is not None else 0
            above = int(np.count_nonzero(values > col.max)) if col.max is not None else 0
            if below or above:
                outside = values[
                    (values < (col.min if col.min is not None else -np.inf))
                    | (values > (col.max if col.max is not None else np.inf))
                ]
                range_details[col.name] = {
                    "below_min": below,
                    "above_max": above,
                    "min": col.min,
                    "max": col.max,
                    "examples": [float(v) for v in outside[:MAX_EXAMPLES]],
                }
        elif col.dtype == "category" and col.categories is not None:
            values = series.dropna()
            bad = values[~values.isin(list(col.categories))]
            if len(bad):
                category_details[col.name] = {
                    "rows": len(bad),
                    "values": sorted({str(v) for v in bad.unique()[:MAX_EXAMPLES]}),
                    "allowed": list(col.categories),
                }
    out_of_range = sum(d["below_min"] + d["above_max"] for d in range_details.values())
    checks.append(
        make_check(
            "contract.ranges",
            "contract",
            out_of_range,
            0,
            "<=",
            "every numeric value within its contract range"
            if not out_of_range
            else "; ".join(
                f"{name}: {d['below_min'] + d['above_max']} value(s) outside [{d['min']}, {d['max']}]"
                for name, d in range_details.items()
            ),
            details=range_details or None,
        )
    )
    bad_categories = sum(d["rows"] for d in category_details.values())
    checks.append(
        make_check(
            "contract.categories",
            "contract",
            bad_categories,
            0,
            "<=",
            "every category value allowed by the contract"
            if not bad_categories
            else "; ".join(
                f"{name}: {d['rows']} row(s) with {', '.join(map(repr, d['values']))}"
                for name, d in category_details.items()
            ),
            details=category_details or None,
        )
    )
    infinite_total = sum(finite_details.values())
    checks.append(
        make_check(
            "contract.finite_values",
            "contract",
            infinite_total,
            0,
            "<=",
            "no infinite numeric values"
            if not infinite_total
            else "; ".join(f"{name}: {count} infinite value(s)" for name, count in finite_details.items()),
            details=finite_details or None,
        )
    )
    return checks


def reference_check(problems: list[str], rows: int) -> dict:
    """The reference must itself be usable, or drift against it means nothing."""
    issues = list(problems) + ([] if rows else ["reference snapshot has no rows"])
    return make_check(
        "contract.reference_snapshot",
        "contract",
        len(issues),
        0,
        "<=",
        "reference snapshot honours the contract" if not issues else "; ".join(issues[:MAX_EXAMPLES]),
        details={"problems": issues} if issues else None,
    )
