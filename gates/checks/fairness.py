"""Equal opportunity: the true-positive rate should not depend on the sensitive attribute.

The difference is max(TPR) - min(TPR) over the attribute's groups (fairlearn's
equal_opportunity_difference). A group with fewer positives than the policy's
`min_group_positives` has no TPR worth comparing (with zero positives it is undefined): it is
reported with its count but left out of the difference. If fewer than two groups remain, the
difference cannot be measured; the check is then recorded as skipped (it passes) and says so,
because blocking every model on a holdout that cannot show unfairness would make the gate
meaningless rather than safe. Missing attribute values form their own group.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gates.checks.result import make_check
from ml.data.contract import column_label

MISSING_GROUP = "<missing>"


def equal_opportunity(y_true: np.ndarray, y_pred: np.ndarray, groups: pd.Series, min_positives: int) -> dict:
    keys = groups.astype("string").fillna(MISSING_GROUP).to_numpy(dtype=object)
    table: dict[str, dict] = {}
    for group in sorted(set(keys.tolist())):
        in_group = keys == group
        positives = int(np.count_nonzero(y_true & in_group))
        hits = int(np.count_nonzero(y_true & y_pred & in_group))
        table[str(group)] = {
            "rows": int(np.count_nonzero(in_group)),
            "positives": positives,
            "true_positives": hits,
            "tpr": hits / positives if positives else None,
            "compared": positives >= min_positives and positives > 0,
        }
    compared = [row["tpr"] for row in table.values() if row["compared"]]
    difference = max(compared) - min(compared) if len(compared) >= 2 else None
    return {"groups": table, "difference": difference, "compared_groups": len(compared)}


def fairness_check(result: dict | None, attribute: str | None, policy: dict) -> dict:
    threshold = policy["max_equal_opportunity_difference"]
    name = "fairness.equal_opportunity_difference"
    key = "model.fairness.max_equal_opportunity_difference"
    if attribute is None or result is None:
        return make_check(
            name,
            "fairness",
            None,
            threshold,
            "<=",
            "contract names no sensitive attribute; fairness not measured",
            skipped=True,
            column=attribute,
            policy_key=key,
        )
    if result["difference"] is None:
        excluded = [g for g, row in result["groups"].items() if not row["compared"]]
        return make_check(
            name,
            "fairness",
            None,
            threshold,
            "<=",
            f"fewer than two {column_label(attribute)} groups have >= {policy['min_group_positives']} "
            f"positives (too few: {', '.join(excluded) or 'none'}); "
            "equal opportunity cannot be measured on this holdout",
            skipped=True,
            column=attribute,
            policy_key=key,
            details={"attribute": attribute, "groups": result["groups"]},
        )
    tprs = {g: row["tpr"] for g, row in result["groups"].items() if row["compared"]}
    return make_check(
        name,
        "fairness",
        result["difference"],
        threshold,
        "<=",
        column=attribute,
        policy_key=key,
        details={
            "attribute": attribute,
            "tpr": tprs,
            "excluded_groups": [g for g, row in result["groups"].items() if not row["compared"]],
        },
    )
