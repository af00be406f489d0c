"""Which trained candidate goes on to the model gate.

Simplest first. Among candidates whose validation F1 is within the tolerance of the best, the
simplest wins: a 0.001 F1 edge on a few thousand rows is noise (its standard error is about
0.015), while a forest costs more to serve, explain and keep than a logistic regression. Ties
left after that are broken by F1, then ROC AUC, then name: nothing is left to chance.
"""

from __future__ import annotations

from typing import Any

COMPLEXITY = {"logistic_regression": 0, "decision_tree": 1, "random_forest": 2}


def selection_key(summary: dict[str, Any]) -> tuple:
    """Best F1 (what the model gate judges), then ROC AUC, then name."""
    m = summary["metrics"]
    return (-m["f1"], -m["roc_auc"], summary["name"])


def choose(candidates: list[dict[str, Any]], tolerance: float) -> dict[str, Any]:
    """The simplest candidate within `tolerance` of the best F1 (then the selection key)."""
    best_f1 = max(c["metrics"]["f1"] for c in candidates)
    eligible = [c for c in candidates if c["metrics"]["f1"] >= best_f1 - tolerance]
    return min(eligible, key=lambda c: (COMPLEXITY.get(c["model_type"], len(COMPLEXITY)), *selection_key(c)))


def rank(candidates: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Candidates best first, as the evidence and the run summary list them."""
    return sorted(candidates, key=selection_key)
