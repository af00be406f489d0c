"""Model quality on the holdout: absolute thresholds and regression against the champion."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

from gates.checks.result import fmt, make_check


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, scores: np.ndarray | None) -> dict:
    """Accuracy, F1 and ROC AUC of the positive class; ROC AUC is None when it is undefined."""
    out = {
        "rows": len(y_true),
        "positives": int(y_true.sum()),
        "accuracy": float(accuracy_score(y_true, y_pred)) if len(y_true) else None,
        "f1": float(f1_score(y_true, y_pred, zero_division=0.0)) if len(y_true) else None,
        "roc_auc": None,
        "roc_auc_note": None,
    }
    if scores is None:
        out["roc_auc_note"] = "model exposes no probability scores"
    elif len(np.unique(y_true)) < 2:
        out["roc_auc_note"] = "holdout has a single label class"
    elif not np.all(np.isfinite(scores)):
        out["roc_auc_note"] = "model returned non-finite scores"
    else:
        out["roc_auc"] = float(roc_auc_score(y_true, scores))
    return out


def confusion(y_true: np.ndarray, y_pred: np.ndarray) -> list[list[int]]:
    """[[TN, FP], [FN, TP]] (rows actual negative/positive, columns predicted)."""
    return confusion_matrix(y_true, y_pred, labels=[False, True]).astype(int).tolist()


def quality_checks(metrics: dict, policy: dict) -> list[dict]:
    checks = []
    for metric in ("accuracy", "f1", "roc_auc"):
        threshold = policy[f"min_{metric}"]
        name = f"quality.{metric}"
        if threshold is None:
            checks.append(
                make_check(
                    name,
                    "quality",
                    metrics[metric],
                    None,
                    ">=",
                    f"policy sets no minimum {metric}",
                    skipped=True,
                    policy_key=f"model.quality.min_{metric}",
                )
            )
            continue
        note = metrics.get(f"{metric}_note")
        checks.append(
            make_check(
                name,
                "quality",
                metrics[metric],
                threshold,
                ">=",
                f"{metric} not measurable: {note}" if metrics[metric] is None and note else "",
                policy_key=f"model.quality.min_{metric}",
            )
        )
    return checks


def regression_check(candidate_f1: float | None, champion: dict | None, policy: dict) -> dict:
    """Candidate F1 / champion F1 >= min ratio; no champion yet is a recorded pass."""
    threshold = policy["min_f1_ratio"]

    def check(observed, reason: str, **kwargs) -> dict:
        return make_check(
            "regression.f1_vs_champion", "regression", observed, threshold, ">=", reason,
            policy_key="model.regression.min_f1_ratio", **kwargs,
        )

    if champion is None:
        return check(None, "no champion yet (first deployment): nothing to regress against", skipped=True)
    if champion.get("error"):
        return check(
            None,
            f"champion version {champion['version']} could not be scored on this holdout: "
            f"{champion['error']}",
            details={"champion_version": champion["version"]},
        )
    champion_f1 = champion["f1"]
    details = {
        "candidate_f1": candidate_f1, "champion_f1": champion_f1, "champion_version": champion["version"]
    }
    if champion_f1 == 0:
        zero = "champion F1 is 0 on this holdout: any candidate is no regression"
        return check(None, zero, passed=True, details=details)
    ratio = None if candidate_f1 is None else candidate_f1 / champion_f1
    reason = (
        ""
        if ratio is None
        else f"candidate F1 {fmt(candidate_f1)} / champion v{champion['version']} F1 {fmt(champion_f1)} "
        f"= {fmt(ratio)} ({'>=' if ratio >= threshold else '<'} {fmt(threshold)})"
    )
    return check(ratio, reason, details=details)
