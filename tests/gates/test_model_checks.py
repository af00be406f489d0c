"""Model-gate checks at their boundaries: quality, regression vs champion, latency, fairness."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gates.checks.fairness import equal_opportunity, fairness_check
from gates.checks.labels import positive_mask
from gates.checks.latency import latency_checks
from gates.checks.quality import classification_metrics, confusion, quality_checks, regression_check

QUALITY = {"min_accuracy": 0.75, "min_f1": 0.5, "min_roc_auc": 0.7}


def test_metrics_match_sklearn_definitions_and_confusion_layout():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1], dtype=bool)
    pred = np.array([1, 1, 0, 0, 0, 1, 0, 1], dtype=bool)
    scores = np.array([0.9, 0.8, 0.4, 0.1, 0.2, 0.6, 0.3, 0.7])
    m = classification_metrics(y, pred, scores)
    assert m["accuracy"] == 0.75 and m["f1"] == 0.75
    assert m["roc_auc"] == 15 / 16  # one of the 16 positive/negative pairs (0.4 vs 0.6) is misordered
    assert confusion(y, pred) == [[3, 1], [1, 3]]


@pytest.mark.parametrize(("accuracy", "passed"), [(0.75, True), (0.7499, False)])
def test_quality_minimum_is_inclusive(accuracy, passed):
    checks = quality_checks({"accuracy": accuracy, "f1": 0.9, "roc_auc": 0.9}, QUALITY)
    assert checks[0]["name"] == "quality.accuracy" and checks[0]["passed"] is passed


def test_roc_auc_unmeasurable_fails_with_the_reason():
    m = classification_metrics(np.ones(5, dtype=bool), np.ones(5, dtype=bool), np.full(5, 0.9))
    check = quality_checks(m, QUALITY)[2]
    assert not check["passed"] and "single label class" in check["reason"]


def test_a_null_minimum_skips_that_metric():
    check = quality_checks({"accuracy": 0.1, "f1": 0.9, "roc_auc": 0.9}, {**QUALITY, "min_accuracy": None})[0]
    assert check["skipped"] and check["passed"]


@pytest.mark.parametrize(("candidate", "passed"), [(0.95, True), (0.9499, False)])
def test_regression_ratio_boundary(candidate, passed):
    check = regression_check(candidate, {"version": "3", "f1": 1.0}, {"min_f1_ratio": 0.95})
    assert check["passed"] is passed and check["details"]["champion_version"] == "3"


def test_first_deployment_and_unscorable_champion():
    first = regression_check(0.1, None, {"min_f1_ratio": 0.95})
    assert first["passed"] and first["skipped"] and "first deployment" in first["reason"]
    broken = regression_check(0.9, {"version": "2", "error": "missing column x"}, {"min_f1_ratio": 0.95})
    assert not broken["passed"] and "missing column x" in broken["reason"]


LATENCY = {
    "max_p99_ms": 100,
    "rate_rps": 50,
    "min_achieved_fraction": 0.9,
    "concurrency": 4,
    "requests": 100,
    "rows_per_request": 1,
    "warmup_requests": 10,
    "workers": 1,
}


def _latency_summary(**overrides) -> dict:
    summary = {
        "p50_ms": 5.0,
        "p95_ms": 9.0,
        "p99_ms": 50.0,
        "mean_ms": 6.0,
        "max_ms": 120.0,
        "offered_rps": 50.0,
        "achieved_rps": 50.0,
        "send_lag_p99_ms": 1.0,
        "throughput_rps": 300.0,
        "requests": 100,
        "concurrency": 4,
        "rows_per_request": 1,
        "errors": 0,
        "error_kinds": {},
    }
    return {**summary, **overrides}


def _by_name(checks: list[dict]) -> dict:
    return {c["name"]: c for c in checks}


@pytest.mark.parametrize(("p99", "passed"), [(100.0, True), (100.001, False)])
def test_latency_p99_boundary(p99, passed):
    checks = _by_name(latency_checks(_latency_summary(p99_ms=p99), LATENCY))
    assert checks["latency.p99_ms"]["passed"] is passed
    assert checks["latency.achieved_rps"]["passed"] and checks["latency.errors"]["passed"]
    reason = checks["latency.p99_ms"]["reason"]
    assert "100 requests of 1 row offered open-loop at 50 req/s over up to 4 keep-alive connections" in reason
    assert "scheduled send" in reason


# 0.9 * 50 == 45.0 exactly in binary floating point, so 45.0 is the boundary itself
@pytest.mark.parametrize(("achieved", "passed"), [(45.0, True), (44.99, False)])
def test_achieved_rate_boundary(achieved, passed):
    check = _by_name(latency_checks(_latency_summary(achieved_rps=achieved), LATENCY))["latency.achieved_rps"]
    assert check["threshold"] == 45.0 and check["comparator"] == ">="
    assert check["passed"] is passed
    assert ("fell behind" in check["reason"]) is not passed


def test_failed_requests_fail_the_errors_check():
    checks = _by_name(latency_checks(_latency_summary(errors=2, error_kinds={"500": 2}), LATENCY))
    assert not checks["latency.errors"]["passed"] and "'500': 2" in checks["latency.errors"]["reason"]


def test_unservable_candidate_fails_latency_with_the_reason():
    checks = latency_checks(None, LATENCY, failure="model server exited with code 1: boom")
    assert len(checks) == 3 and all(not c["passed"] and "boom" in c["reason"] for c in checks)


def _fair_case(tpr_a: float, tpr_b: float, n: int = 100):
    y = np.ones(2 * n, dtype=bool)
    pred = np.concatenate([np.arange(n) < tpr_a * n, np.arange(n) < tpr_b * n])
    groups = pd.Series(["a"] * n + ["b"] * n)
    return y, pred, groups


@pytest.mark.parametrize(("tpr_b", "passed"), [(0.5, True), (0.49, False)])
def test_equal_opportunity_boundary(tpr_b, passed):
    # TPRs 0.75 and 0.5 are exact in binary floating point, so the difference equals 0.25 exactly
    result = equal_opportunity(*_fair_case(0.75, tpr_b), min_positives=1)
    check = fairness_check(
        result, "group", {"max_equal_opportunity_difference": 0.25, "min_group_positives": 1}
    )
    assert check["observed"] == pytest.approx(0.75 - tpr_b)
    assert check["passed"] is passed


def test_groups_without_positives_are_reported_not_compared():
    y = np.array([1, 1, 1, 1, 0, 0, 1, 1], dtype=bool)
    pred = np.array([1, 1, 0, 0, 0, 1, 1, 1], dtype=bool)
    groups = pd.Series(["a", "a", "a", "a", "c", "c", "b", "b"])
    result = equal_opportunity(y, pred, groups, min_positives=1)
    assert result["groups"]["c"] == {
        "rows": 2,
        "positives": 0,
        "true_positives": 0,
        "tpr": None,
        "compared": False,
    }
    assert result["difference"] == pytest.approx(1.0 - 0.5)
    check = fairness_check(
        result, "group", {"max_equal_opportunity_difference": 0.05, "min_group_positives": 1}
    )
    assert check["details"]["excluded_groups"] == ["c"]


def test_fewer_than_two_comparable_groups_is_a_recorded_skip():
    y = np.array([1, 1, 0, 0], dtype=bool)
    result = equal_opportunity(y, y, pd.Series(["a", "a", "b", "b"]), min_positives=1)
    check = fairness_check(
        result, "group", {"max_equal_opportunity_difference": 0.05, "min_group_positives": 1}
    )
    assert check["skipped"] and check["passed"] and "cannot be measured" in check["reason"]
    none = fairness_check(None, None, {"max_equal_opportunity_difference": 0.05, "min_group_positives": 1})
    assert none["skipped"] and "no sensitive attribute" in none["reason"]


def test_equal_opportunity_agrees_with_fairlearn():
    fairlearn_metrics = pytest.importorskip("fairlearn.metrics")
    rng = np.random.default_rng(5)
    y = rng.random(2000) < 0.4
    groups = pd.Series(rng.choice(["x", "y", "z"], 2000))
    pred = (rng.random(2000) < np.where(groups == "x", 0.7, 0.5)) & y | (rng.random(2000) < 0.1)
    ours = equal_opportunity(y, pred, groups, min_positives=1)["difference"]
    theirs = fairlearn_metrics.equal_opportunity_difference(y, pred, sensitive_features=groups)
    assert ours == pytest.approx(theirs)


@pytest.mark.parametrize(
    ("values", "positive", "expected"),
    [
        (pd.Series([1.0, 0.0, np.nan]), 1, [True, False, False]),
        (pd.Series(["1", "0", None], dtype="string"), 1, [True, False, False]),
        (pd.Series([True, False, None], dtype="boolean"), "true", [True, False, False]),
        (pd.Series(["yes", "no"], dtype="string"), "yes", [True, False]),
        (np.array([1, 0, 1]), True, [True, False, True]),
    ],
)
def test_positive_class_matches_across_dtypes(values, positive, expected):
    assert positive_mask(values, positive).tolist() == expected
