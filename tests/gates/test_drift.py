"""The drift statistics against their textbook definitions (scipy), including the awkward cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from gates.checks import drift

POLICY = {"psi_bins": 10, "max_ks_statistic": 0.1}


def _samples(kind: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n1, n2 = int(rng.integers(1, 2500)), int(rng.integers(1, 2500))
    if kind == 0:
        return rng.standard_normal(n1), rng.standard_normal(n2) * rng.uniform(0.5, 2) + rng.uniform(-1, 1)
    if kind == 1:  # heavy ties
        return rng.integers(0, 5, n1).astype(float), rng.integers(0, 6, n2).astype(float)
    if kind == 2:  # skewed
        return rng.lognormal(0, 2, n1), rng.lognormal(0.2, 2, n2)
    if kind == 3:  # constant reference
        return np.full(n1, 3.0), np.where(rng.random(n2) < 0.1, 4.0, 3.0)
    return rng.standard_normal(n1) * 1e300, rng.standard_normal(n2) * 1e300  # near the float limit


@pytest.mark.parametrize("kind", range(5))
def test_ks_bounds_contain_scipy_and_the_decision_is_exact(kind):
    rng = np.random.default_rng(kind)
    for _ in range(40):
        a, b = _samples(kind, rng)
        threshold = float(rng.uniform(0.01, 0.4))
        ks = drift.numeric_drift(pd.Series(a), pd.Series(b), {**POLICY, "max_ks_statistic": threshold})["ks"]
        exact = stats.ks_2samp(a, b).statistic
        assert ks["statistic"] - 1e-12 <= exact <= ks["upper_bound"] + 1e-12
        assert (ks["statistic"] > threshold) == (exact > threshold)


def test_ks_statistic_is_tight_on_large_continuous_samples():
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal(200_000), rng.standard_normal(150_000) + 0.03
    ks = drift.numeric_drift(pd.Series(a), pd.Series(b), POLICY)["ks"]
    exact = stats.ks_2samp(a, b).statistic
    assert ks["upper_bound"] - ks["statistic"] < 0.002
    assert ks["statistic"] == pytest.approx(exact, abs=0.002)
    asymp = stats.ks_2samp(a, b, method="asymp").pvalue
    assert ks["p_value"] == pytest.approx(asymp, rel=0.05)


def test_psi_matches_a_hand_computation_on_reference_deciles():
    ref = np.arange(1000, dtype=float)  # deciles: 0-99, 100-199, ...
    cur = np.concatenate(
        [np.arange(0, 500, dtype=float), np.full(500, 950.0)]
    )  # half the mass in the last decile
    result = drift.numeric_drift(pd.Series(ref), pd.Series(cur), POLICY)
    ref_share = np.array([b["ref"] for b in result["psi_bins"]])
    cur_share = np.array([b["cur"] for b in result["psi_bins"]])
    assert ref_share == pytest.approx(np.full(10, 0.1), abs=0.002)
    r, c = np.maximum(ref_share, 1e-4), np.maximum(cur_share, 1e-4)  # the documented floor for empty bins
    expected = np.sum((c - r) * np.log(c / r))
    assert result["psi"] == pytest.approx(expected)
    by_hand = 5 * (0.1 - 0.1) + 4 * (1e-4 - 0.1) * math.log(1e-4 / 0.1) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert result["psi"] == pytest.approx(by_hand, rel=0.05)


def test_mean_shift_in_reference_sigmas():
    ref = pd.Series([0.0, 2.0] * 500)  # mean 1, std 1
    result = drift.numeric_drift(ref, ref + 2.0, POLICY)
    assert result["mean_shift_sigma"] == pytest.approx(2.0)


def test_nan_and_inf_are_excluded_and_counted():
    ref = pd.Series([1.0, 2.0, 3.0, np.nan, np.inf])
    cur = pd.Series([1.0, 2.0, 3.0, -np.inf, np.nan, np.nan])
    result = drift.numeric_drift(ref, cur, POLICY)
    assert result["reference"] == pytest.approx(
        {"n": 3, "nan": 1, "inf": 1, "mean": 2.0, "std": math.sqrt(2 / 3), "min": 1.0, "max": 3.0}
    )
    assert result["current"]["nan"] == 2 and result["current"]["inf"] == 1
    assert result["ks"]["statistic"] == 0 and result["psi"] == 0


def test_single_value_samples_and_empty_samples():
    one = drift.numeric_drift(pd.Series([5.0]), pd.Series([6.0]), POLICY)
    assert one["ks"]["statistic"] == 1
    empty = drift.numeric_drift(pd.Series([1.0, 2.0]), pd.Series([], dtype=float), POLICY)
    assert "current" in empty["unmeasurable"]


def test_categorical_chi_square_matches_scipy_and_reports_unseen():
    ref = pd.Series(["a"] * 50 + ["b"] * 30 + ["c"] * 20, dtype="string")
    cur = pd.Series(["a"] * 30 + ["b"] * 30 + ["c"] * 20 + ["d"] * 20, dtype="string")
    result = drift.categorical_drift(ref, cur, POLICY)
    table = np.array([[50, 30, 20, 0], [30, 30, 20, 20]])
    chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
    assert result["chi2"]["statistic"] == pytest.approx(chi2)
    assert result["chi2"]["p_value"] == pytest.approx(p)
    assert result["chi2"]["cramers_v"] == pytest.approx(math.sqrt(chi2 / 200))
    assert result["unseen_categories"] == ["d"] and result["unseen_fraction"] == pytest.approx(0.2)


def test_datetime_features_drift_as_numbers():
    ref = pd.Series(pd.date_range("2024-01-01", periods=100, freq="h", tz="UTC"))
    result = drift.feature_drift(ref, ref + pd.Timedelta(days=30), "datetime", POLICY)
    assert result["ks"]["statistic"] == 1


def test_threads_and_serial_give_identical_results():
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({f"c{i}": rng.standard_normal(5000) for i in range(6)})
    other = frame + 0.1
    cols = [(c, "float") for c in frame.columns]
    serial = drift.drift_all(frame, other, cols, POLICY, workers=1)
    threaded = drift.drift_all(frame, other, cols, POLICY, workers=4)
    for name in frame.columns:
        for key in ("psi", "mean_shift_sigma"):
            assert serial[name][key] == threaded[name][key]
        assert serial[name]["ks"] == threaded[name]["ks"]
