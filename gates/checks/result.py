"""One shape for every check record, and one place that decides pass/fail from a threshold.

Keeping the comparison here (rather than in each check) is what makes the boundary rule uniform:
an observed value equal to its threshold passes for <= and >=, and a value that could not be
measured (None, NaN) never passes a comparison.

A check's `name` is a fixed dotted identifier (`drift.psi`, `nulls`); the column it concerns, if
any, is the separate `column` field, so any column name a contract allows (spaces, dots, quotes,
markup) leaves names unambiguous. `policy_key` names the policy value the threshold came from, so
a refusal can say which key to change.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ml.data.contract import column_label

COMPARATORS: dict[str, Callable[[Any, Any], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
}
# Check group -> the policy section its thresholds live in (None: the contract decides, not a policy).
GROUP_POLICY_SECTIONS: dict[str, str | None] = {
    "contract": None,
    "volume": "data.volume",
    "nulls": "data.nulls",
    "labels": "data.labels",
    "duplicates": "data.duplicates",
    "freshness": "data.freshness",
    "drift": "data.drift",
    "quality": "model.quality",
    "regression": "model.regression",
    "serving": "model.parity",
    "latency": "model.latency",
    "fairness": "model.fairness",
}
GROUPS = tuple(GROUP_POLICY_SECTIONS)
CHECK_NAME = re.compile(r"^[a-z_]+(\.[a-z0-9_]+)*$")


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


def check_label(check: dict) -> str:
    """How a check is named to people: `volume.min_rows`, `nulls[income]`, `drift.psi["mean radius"]`."""
    column = check.get("column")
    return check["name"] if column is None else f"{check['name']}[{column_label(column)}]"


def _compare(observed: Any, threshold: Any, comparator: str, skipped: bool) -> bool:
    if skipped:
        return True
    if threshold is None or not measurable(observed):
        return False
    return bool(COMPARATORS[comparator](observed, threshold))


def _default_reason(observed: Any, threshold: Any, comparator: str, skipped: bool, passed: bool) -> str:
    if skipped:
        return "not applicable"
    if not measurable(observed):
        return "could not be measured"
    if passed:
        return f"{fmt(observed)} {comparator} {fmt(threshold)}"
    return f"{fmt(observed)} is not {comparator} {fmt(threshold)}"


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
    column: str | None = None,
    policy_key: str | None = None,
    details: dict | None = None,
) -> dict:
    """A check record. `passed` is computed from the comparison unless given explicitly.

    A skipped check (not applicable here, e.g. no timestamp column) passes and says why. An
    inconclusive check (the measurement could not be trusted, e.g. a host too noisy to time a
    server on) neither passes nor counts as a failure of the candidate: it blocks, and says so.
    """
    if group not in GROUPS:
        raise ValueError(f"unknown check group {group!r}")
    if comparator not in COMPARATORS:
        raise ValueError(f"unknown comparator {comparator!r}")
    if not CHECK_NAME.match(name):
        raise ValueError(f"check name {name!r} is not a dotted identifier (put a column in `column`)")
    if inconclusive:
        passed, blocking, skipped = False, True, False
    if passed is None:
        passed = _compare(observed, threshold, comparator, skipped)
    reason = reason or _default_reason(observed, threshold, comparator, skipped, passed)
    record: dict[str, Any] = {"name": name}
    if column is not None:
        record["column"] = str(column)
    record.update(
        group=group,
        observed=jsonable(observed),
        threshold=jsonable(threshold),
        comparator=comparator,
        passed=bool(passed),
        reason=reason,
        blocking=bool(blocking),
        skipped=bool(skipped),
        inconclusive=bool(inconclusive),
    )
    if policy_key is not None:
        record["policy_key"] = policy_key
    if details:
        record["details"] = jsonable(details)
    return record


def gate_passed(checks: list[dict]) -> bool:
    """A gate passes when every blocking check passed (advisory checks only inform).

    Inconclusive checks have passed=False and blocking=True, so they block too.
    """
    return all(c["passed"] for c in checks if c["blocking"])
