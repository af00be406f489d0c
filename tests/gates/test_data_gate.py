"""The data gate on real files: each check passes at its threshold and fails just beyond it."""

from __future__ import annotations

import json
import math
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from gates.evidence import load_evidence
from sluice.errors import SluiceError
from tests.gates.conftest import AS_OF, make_frame
from tests.gates.conftest import check as get_check


def nudge(value: float, direction: str) -> float:
    """The nearest float beyond `value` in the failing direction."""
    return float(np.nextafter(value, math.inf if direction == "up" else -math.inf))


def test_clean_snapshot_passes_without_drift_and_leaves_evidence(
    run_gate, reference_frame, current_frame, tmp_path
):
    evidence = run_gate(reference_frame, current_frame)
    assert evidence["passed"], [c for c in evidence["checks"] if not c["passed"]]
    assert evidence["drift_detected"] is False
    assert evidence["decision"] == "no-op"
    # The gate says what it saw; whether the run then trains is the runner's call (--only-on-drift).
    assert evidence["summary"].endswith("No drift detected.") and "no-op" not in evidence["summary"]
    assert evidence["verdict"] == "passed" and evidence["counts"]["advisory_findings"] == 0
    written = load_evidence(tmp_path / "out-0" / "data-evidence.json")
    assert written == json.loads((tmp_path / "out-0" / "data-evidence.json").read_text())
    for ext in (".md", ".html"):
        assert (tmp_path / "out-0" / f"data-evidence{ext}").stat().st_size > 0
    subject = written["subject"]
    assert len(subject["data_sha256"]) == 64 and subject["data_sha256"] != subject["reference_sha256"]
    assert subject["code_commit"]


def test_drift_triggers_retrain_without_blocking_and_plots_the_drifted_feature(run_gate, reference_frame):
    drifted = make_frame(300, 2, start="2024-02-01", income_shift=150, score_nulls=0.0)
    evidence = run_gate(reference_frame, drifted)
    assert evidence["passed"] and evidence["decision"] == "retrain"
    assert evidence["drifted_features"] == ["income"]
    assert not get_check(evidence, "drift.ks", "income")["passed"]
    assert get_check(evidence, "drift.ks", "income")["blocking"] is False
    assert [h["feature"] for h in evidence["plots"]["histograms"]] == ["income"]


def test_blocking_drift_policy_blocks(run_gate, reference_frame):
    drifted = make_frame(300, 2, start="2024-02-01", income_shift=150, score_nulls=0.0)
    evidence = run_gate(reference_frame, drifted, {"data": {"drift": {"blocking": True}}})
    assert not evidence["passed"] and evidence["decision"] == "blocked"


# (check name, policy path, direction in which a threshold change makes it fail, how to build data)
POLICY_BOUNDARIES = [
    (("volume.min_rows", None), ("data", "volume", "min_rows"), "up", "plain"),
    (("volume.reference_fraction", None), ("data", "volume", "min_reference_fraction"), "up", "plain"),
    (("nulls", "score"), ("data", "nulls", "nullable_max_increase"), "down", "nulls"),
    (("labels.classes", None), ("data", "labels", "min_classes"), "up", "plain"),
    (("labels.positive_class", None), ("data", "labels", "min_positive_rows"), "up", "plain"),
    (("duplicates.rate", None), ("data", "duplicates", "max_rate"), "down", "duplicates"),
    (("freshness.max_age_hours", None), ("data", "freshness", "max_age_hours"), "down", "plain"),
    (("drift.mean_shift", "income"), ("data", "drift", "max_mean_shift_sigma"), "down", "drift"),
    (("drift.psi", "income"), ("data", "drift", "max_psi"), "down", "drift"),
    (("drift.ks", "income"), ("data", "drift", "max_ks_statistic"), "down", "drift"),
    (("drift.chi2", "colour"), ("data", "drift", "max_cramers_v"), "down", "unseen"),
    (("drift.unseen", "colour"), ("data", "drift", "max_unseen_fraction"), "down", "unseen"),
]


def _current(kind: str) -> pd.DataFrame:
    if kind == "nulls":
        return make_frame(300, 2, score_nulls=0.2)
    if kind == "duplicates":
        frame = make_frame(300, 2, score_nulls=0.0)
        return pd.concat([frame, frame.iloc[:6]], ignore_index=True)
    if kind == "drift":
        return make_frame(300, 2, income_shift=60, score_nulls=0.0)
    if kind == "unseen":
        return make_frame(300, 2, score_nulls=0.0, colours=("red", "green", "blue", "violet"))
    return make_frame(300, 2, score_nulls=0.0)


def _policy(path: tuple[str, ...], value) -> dict:
    out: dict = {}
    node = out
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("name", "path", "direction", "kind"),
    POLICY_BOUNDARIES,
    ids=[b[0][0] + (f"[{b[0][1]}]" if b[0][1] else "") for b in POLICY_BOUNDARIES],
)
def test_policy_threshold_equal_passes_and_one_step_beyond_fails(
    run_gate, reference_frame, name, path, direction, kind
):
    current = _current(kind)
    first = get_check(run_gate(reference_frame, current), *name)
    observed = first["observed"]
    assert observed is not None
    assert first["policy_key"] == ".".join(path)  # the refusal can name the key to change
    # Settle: KS reports an exact D once the threshold sits at its lower bound (refinement).
    for _ in range(3):
        settled = get_check(run_gate(reference_frame, current, _policy(path, observed)), *name)["observed"]
        if settled == observed:
            break
        observed = settled
    at_threshold = get_check(run_gate(reference_frame, current, _policy(path, observed)), *name)
    assert at_threshold["observed"] == observed == at_threshold["threshold"]
    assert at_threshold["passed"], at_threshold
    beyond = observed + 1 if isinstance(observed, int) and direction == "up" else nudge(observed, direction)
    if beyond < 0:
        pytest.skip(f"{name}: observed {observed} is already the smallest allowed threshold")
    past = get_check(run_gate(reference_frame, current, _policy(path, beyond)), *name)
    assert not past["passed"], past


def test_contract_violations_are_failed_checks_with_evidence(run_gate, reference_frame, current_frame):
    broken = current_frame.drop(columns=["age"]).assign(extra=1)
    broken["income"] = broken["income"].astype(object)
    broken.loc[0, "income"] = "lots"
    broken.loc[1, "colour"] = "mauve"
    evidence = run_gate(reference_frame, broken)
    assert not evidence["passed"]
    assert "age" in get_check(evidence, "contract.required_columns")["reason"]
    assert "extra" in get_check(evidence, "contract.unexpected_columns")["reason"]
    assert "'lots'" in get_check(evidence, "contract.dtypes")["reason"]
    assert "mauve" in get_check(evidence, "contract.categories")["reason"]
    assert get_check(evidence, "drift", "age")["skipped"]


@pytest.mark.parametrize(("value", "passes"), [(1000.0, True), (1000.01, False), (0.0, True), (-0.01, False)])
def test_range_boundaries_are_inclusive(run_gate, reference_frame, current_frame, value, passes):
    current = current_frame.copy()
    current.loc[5, "income"] = value
    assert get_check(run_gate(reference_frame, current), "contract.ranges")["passed"] is passes


def test_non_nullable_column_fails_on_one_null(run_gate, reference_frame, current_frame):
    current = current_frame.copy()
    current["income"] = current["income"].astype(object)
    current.loc[3, "income"] = None
    result = get_check(run_gate(reference_frame, current), "nulls", "income")
    assert not result["passed"] and result["threshold"] == 0 and "1 null" in result["reason"]


def test_current_older_than_reference_fails_freshness(run_gate, reference_frame):
    stale = make_frame(300, 2, start="2023-12-01", score_nulls=0.0)
    result = get_check(run_gate(reference_frame, stale), "freshness.vs_reference_hours")
    assert not result["passed"] and result["observed"] < 0


def test_freshness_is_skipped_without_a_timestamp(run_gate, tmp_path, reference_frame, current_frame):
    from tests.gates.conftest import CONTRACT, write_yaml

    doc = {k: v for k, v in CONTRACT.items() if k != "timestamp"}
    doc["columns"] = [c for c in CONTRACT["columns"] if c["name"] != "ts"]
    contract = write_yaml(tmp_path / "no-ts.yaml", doc)
    evidence = run_gate(
        reference_frame.drop(columns="ts"), current_frame.drop(columns="ts"), contract=contract
    )
    result = get_check(evidence, "freshness")
    assert result["skipped"] and result["passed"] and "no timestamp" in result["reason"]


def test_freshness_age_measured_from_as_of(run_gate, reference_frame, current_frame):
    newest = pd.Timestamp(current_frame["ts"].max())
    evidence = run_gate(reference_frame, current_frame, as_of=(newest + timedelta(hours=5)).to_pydatetime())
    assert get_check(evidence, "freshness.max_age_hours")["observed"] == pytest.approx(5.0)


# ---- adversarial data ------------------------------------------------------------------------


def test_nan_and_infinities_are_counted_not_crashing(run_gate, reference_frame, current_frame):
    current = current_frame.copy()
    current["score"] = current["score"].astype(object)
    current.loc[0, "score"] = "inf"
    current.loc[1, "score"] = "-inf"
    current.loc[2, "score"] = "NaN"
    evidence = run_gate(reference_frame, current)
    assert get_check(evidence, "contract.finite_values")["observed"] == 2
    assert not get_check(evidence, "contract.finite_values")["passed"]
    summary = evidence["data"]["features"]["score"]
    assert math.isfinite(summary["psi"]) and math.isfinite(summary["ks_statistic"])


def test_constant_columns_and_a_change_away_from_the_constant(run_gate, reference_frame, current_frame):
    reference = reference_frame.assign(score=1.0)
    same = run_gate(reference, current_frame.assign(score=1.0))
    assert get_check(same, "drift.mean_shift", "score")["observed"] == 0
    assert get_check(same, "drift.ks", "score")["observed"] == 0
    moved = run_gate(reference, current_frame.assign(score=2.0))
    shift = get_check(moved, "drift.mean_shift", "score")
    assert not shift["passed"] and "constant" in shift["reason"]
    assert get_check(moved, "drift.ks", "score")["observed"] == 1


def test_single_class_labels_fail_the_label_checks(run_gate, reference_frame, current_frame):
    evidence = run_gate(reference_frame, current_frame.assign(default=0))
    assert not get_check(evidence, "labels.classes")["passed"]
    assert not get_check(evidence, "labels.positive_class")["passed"]


def test_unseen_category_outside_the_contract_is_a_contract_failure(run_gate, reference_frame, current_frame):
    current = current_frame.copy()
    current.loc[:9, "colour"] = "<script>alert(1)</script>"
    evidence = run_gate(reference_frame, current)
    assert not get_check(evidence, "contract.categories")["passed"]
    assert "<script>" in get_check(evidence, "drift.unseen", "colour")["reason"]


def test_huge_values_keep_statistics_finite(run_gate, tmp_path, reference_frame, current_frame):
    from tests.gates.conftest import CONTRACT, write_yaml

    doc = {**CONTRACT, "columns": [dict(c) for c in CONTRACT["columns"]]}
    for col in doc["columns"]:
        if col["name"] == "income":
            col.pop("max")
    contract = write_yaml(tmp_path / "huge.yaml", doc)
    ref = reference_frame.assign(income=reference_frame["income"] * 1e300)
    cur = current_frame.assign(income=current_frame["income"] * 1e300)
    evidence = run_gate(ref, cur, contract=contract)
    summary = evidence["data"]["features"]["income"]
    assert math.isfinite(summary["mean_shift_sigma"]) and summary["mean_shift_sigma"] < 2
    assert summary["ks_statistic"] < 0.2


def test_one_row_is_judged_not_crashed(run_gate, reference_frame, current_frame):
    evidence = run_gate(reference_frame, current_frame.iloc[:1])
    assert not evidence["passed"]
    assert not get_check(evidence, "volume.min_rows")["passed"]
    assert get_check(evidence, "duplicates.rate")["observed"] == 0


def _in_memory(contract_path, policy_path, reference: pd.DataFrame, current: pd.DataFrame) -> dict:
    """The gate on frames (as the benchmarks call it): row counts no CSV file can carry."""
    from gates.data_gate import Snapshot, evaluate_data
    from gates.gate_policy import load_policy
    from ml.data.contract import coerce_to_contract, load_contract

    contract = load_contract(contract_path)

    def snapshot(frame: pd.DataFrame) -> Snapshot:
        typed, problems = coerce_to_contract(frame, contract)
        return Snapshot(typed, list(frame.columns), problems)

    policy = load_policy(policy_path, contract.name)
    return evaluate_data(contract, snapshot(reference), snapshot(current), policy, as_of=AS_OF)


def test_zero_rows_fail_volume_and_drift_is_unmeasurable(
    contract_path, policy_file, reference_frame, current_frame
):
    evidence = _in_memory(contract_path, policy_file(), reference_frame, current_frame.iloc[:0])
    assert not evidence["passed"] and evidence["decision"] == "blocked"
    assert get_check(evidence, "volume.min_rows")["observed"] == 0
    assert get_check(evidence, "drift", "income")["skipped"]


def test_empty_reference_fails_instead_of_dividing_by_zero(
    contract_path, policy_file, reference_frame, current_frame
):
    evidence = _in_memory(contract_path, policy_file(), reference_frame.iloc[:0], current_frame)
    assert not get_check(evidence, "contract.reference_snapshot")["passed"]
    fraction = get_check(evidence, "volume.reference_fraction")
    assert fraction["observed"] is None and not fraction["passed"]


def test_a_bad_cell_is_one_dtype_violation_not_also_a_null(run_gate, reference_frame, current_frame):
    current = current_frame.copy()
    current["income"] = current["income"].astype(object)
    current.loc[4, "income"] = "twelve"
    evidence = run_gate(reference_frame, current)
    assert "'twelve'" in get_check(evidence, "contract.dtypes")["reason"]
    nulls = get_check(evidence, "nulls", "income")
    assert nulls["passed"] and nulls["details"]["nulls"] == 0
    assert evidence["counts"]["blocking_failed"] == 1, evidence["summary"]


# ---- unusable input raises --------------------------------------------------------------------


def test_unreadable_inputs_raise_one_line_errors(tmp_path, contract_path):
    from gates.data_gate import run_data_gate

    good = tmp_path / "good.csv"
    make_frame(60, 1).to_csv(good, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(SluiceError, match="not found"):
        run_data_gate(contract_path, good, tmp_path / "missing.csv", out_dir=tmp_path / "o")
    with pytest.raises(SluiceError, match="not UTF-8"):
        run_data_gate(contract_path, good, bad, out_dir=tmp_path / "o")
    with pytest.raises(SluiceError, match="is a directory, not a file"):
        run_data_gate(contract_path, good, tmp_path, out_dir=tmp_path / "o")
    header_only = tmp_path / "header-only.csv"
    header_only.write_text(good.read_text().splitlines()[0] + "\n")
    with pytest.raises(SluiceError, match="has a header but no rows"):
        run_data_gate(contract_path, good, header_only, out_dir=tmp_path / "o")
    with pytest.raises(SluiceError, match="has a header but no rows"):
        run_data_gate(contract_path, header_only, good, out_dir=tmp_path / "o")
    broken = tmp_path / "broken.yaml"
    broken.write_text("apiVersion: [unclosed\n")
    with pytest.raises(SluiceError, match="not valid YAML"):
        run_data_gate(broken, good, good, out_dir=tmp_path / "o")
    assert not (tmp_path / "o").exists()
