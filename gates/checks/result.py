"""One shape for every check record, and one place that decides pass/fail from a threshold.

Keeping the comparison here (rather than in each check) is what makes the boundary rule uniform:
an observed value equal to its threshold passes for <= and >=, and a value that could not be
measured (None, NaN) never passes a comparison.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

import numpy as np

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
GROUPS = (
    "contract",
    "volume",
    "nulls",
    "labels",
    "duplicates",
    "freshness",
    "drift",
    "quality",
    "regression",
    "serving",
    "latency",
    "fairness",
)


def fmt(value: Any) -> str:
    """Numbers as a reviewer reads them: 4 significant digits, integers as integers."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value == int(value) and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def jsonable(value: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, non-finite floats as None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else None
    return value


def measurable(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, (float, np.floating)):
        return math.isfinite(float(value))
    return True


def make_check(
    name: str,
    group: str,
    observed: Any,
    threshold: Any,
    comparator: str,
    reason: str = "",
    *,
    passed: bool | None = None,
    blocking: bool = True,
    skipped: bool = False,
    inconclusive: bool = False,
    details: dict | None = None,
) -> dict:
    """A check record. `passed` is computed from the comparison unless given explicitly.

    A skipped check (not applicable here, e.g. no timestamp column) passes and says why. An
    inconclusive check could not be judged (e.g. latency on a host too noisy to measure it): it
    has not passed and it blocks, and the record carries `"inconclusive": true` so that it is
    reported apart from a check that was judged and failed (absent means false).
    """
    if inconclusive:
        passed, blocking = False, True
    if group not in GROUPS:
        raise ValueError(f"unknown check group {group!r}")
    if comparator not in COMPARATORS:
        raise ValueError(f"unknown comparator {comparator!r}")
    if passed is None:
        if skipped:
            passed = True
        elif threshold is None or not measurable(observed):
            passed = False
        else:
            passed = bool(COMPARATORS[comparator](observed, threshold))
    if not reason:
        if skipped:
            reason = "not applicable"
        elif not measurable(observed):
            reason = "could not be measured"
        elif passed:
            reason = f"{fmt(observed)} {comparator} {fmt(threshold)}"
        else:
            reason = f"{fmt(observed)} is not {comparator} {fmt(threshold)}"
    record = {
        "name": name,
        "group": group,
        "observed": jsonable(observed),
        "threshold": jsonable(threshold),
        "comparator": comparator,
        "passed": bool(passed),
        "reason": reason,
        "blocking": bool(blocking),
        "skipped": bool(skipped),
    }
    if inconclusive:
        record["inconclusive"] = True
    if details:
        record["details"] = jsonable(details)
    return record


def gate_passed(checks: list[dict]) -> bool:
    """A gate passes when every blocking check passed (advisory checks only inform)."""
    return all(c["passed"] for c in checks if c["blocking"])


def failed_checks(checks: list[dict], *, blocking_only: bool = True) -> list[dict]:
    return [c for c in checks if not c["passed"] and (c["blocking"] or not blocking_only)]
