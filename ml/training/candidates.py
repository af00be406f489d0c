"""The candidate models a pipeline run trains, and how each becomes an sklearn estimator.

Candidates are data (a list of {name, model_type, params}) so that a pipeline run's parameters
say exactly what was tried, and the registry can record the winner's parameters as JSON.
"""

from __future__ import annotations

from typing import Any

from sluice.errors import SluiceError

DEFAULT_SEED = 20240701
DEFAULT_VALIDATION_FRACTION = 0.2
DEFAULT_HOLDOUT_FRACTION = 0.2
# F1 within this of the best counts as a tie, and the simplest tied candidate wins.
DEFAULT_SELECTION_TOLERANCE = 0.01

# Slowest first: the local runner fits two candidates at a time in list order, so starting the
# forest first lets the two quick ones share the other slot (the longest-job-first schedule).
DEFAULT_CANDIDATES: list[dict[str, Any]] = [
    {
        "name": "random_forest",
        "model_type": "random_forest",
        # Sized for a 2-core laptop: the forest is the slowest candidate and bounds the run.
        "params": {
            "n_estimators": 80,
            "max_depth": 10,
            "min_samples_leaf": 10,
            "class_weight": "balanced_subsample",
            "n_jobs": 1,
        },
    },
    {
        "name": "logistic_regression",
        "model_type": "logistic_regression",
        "params": {"C": 1.0, "class_weight": "balanced", "max_iter": 1000},
    },
    {
        "name": "decision_tree",
        "model_type": "decision_tree",
        "params": {"max_depth": 6, "min_samples_leaf": 50, "class_weight": "balanced"},
    },
]

MODEL_TYPES = ("logistic_regression", "decision_tree", "random_forest")
# KFP passes parameters through protobuf Struct, where every number is a double: 80 arrives as
# 80.0, which scikit-learn rightly refuses for n_estimators. These go back to int.
INTEGER_PARAMS = frozenset(
    {
        "max_iter",
        "max_depth",
        "min_samples_leaf",
        "min_samples_split",
        "n_estimators",
        "n_jobs",
        "max_leaf_nodes",
        "verbose",
    }
)


def restore_integers(params: dict[str, Any]) -> dict[str, Any]:
    return {
        k: int(v) if k in INTEGER_PARAMS and isinstance(v, float) and v.is_integer() else v
        for k, v in params.items()
    }


def validate_candidates(candidates: list[dict[str, Any]]) -> None:
    names = set()
    for cand in candidates:
        if not isinstance(cand, dict) or not {"name", "model_type", "params"} <= set(cand):
            raise SluiceError(f"candidate must be a mapping with name, model_type, params: {cand!r}")
        if cand["model_type"] not in MODEL_TYPES:
            raise SluiceError(f"unknown model_type {cand['model_type']!r} (known: {', '.join(MODEL_TYPES)})")
        if cand["name"] in names:
            raise SluiceError(f"candidate name {cand['name']!r} used twice")
        names.add(cand["name"])


def build_estimator(model_type: str, params: dict[str, Any], seed: int):
    """An unfitted classifier; the seed is always set so two runs give the same model."""
    params = restore_integers(params)
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(random_state=seed, **params)
    if model_type == "decision_tree":
        from sklearn.tree import DecisionTreeClassifier

        return DecisionTreeClassifier(random_state=seed, **params)
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(random_state=seed, **params)
    raise SluiceError(f"unknown model_type {model_type!r} (known: {', '.join(MODEL_TYPES)})")


def build_model(contract: Any, model_type: str, params: dict[str, Any], seed: int):
    """The unfitted pipeline a candidate is: the contract's preprocessing, then its classifier.

    One builder for training and the tests, so that what the serving exporter
    (`ml.serving.export.split_pipeline`) is tested on is exactly what a pipeline run registers.
    """
    from sklearn.pipeline import Pipeline

    from ml.training.features import build_preprocessor

    return Pipeline(
        [("prepare", build_preprocessor(contract)), ("model", build_estimator(model_type, params, seed))]
    )
