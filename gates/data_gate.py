"""The data gate: is the current snapshot fit to train on, and has it drifted from the reference?

Two separate answers, on purpose. `passed` says whether the data may be used at all (contract,
volume, nulls, labels, duplicates, freshness; drift too if the policy makes it blocking).
`drift_detected` says whether retraining is warranted (`decision` "retrain", else "no-op"). Whether
a run then trains anyway is the runner's business (`sluice run --only-on-drift` trains only on
drift), so the evidence itself never claims that nothing was trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from gates.checks.contract_checks import contract_checks, reference_check
from gates.checks.data_quality import (
    duplicate_check,
    freshness_checks,
    label_checks,
    null_checks,
    volume_checks,
)
from gates.checks.drift import drift_all
from gates.checks.result import make_check
from gates.evidence import finalize, new_evidence, write_evidence
from gates.gate_policy import load_policy, policy_record
from ml.data.contract import (
    Contract,
    coerce_to_contract,
    column_label,
    load_contract,
    read_table,
    sha256_file,
)
from sluice.git import code_commit

DRIFT_KEYS = {  # drift check name -> the policy value it is judged by (under data.drift)
    "drift.mean_shift": "max_mean_shift_sigma",
    "drift.psi": "max_psi",
    "drift.ks": "max_ks_statistic",
    "drift.chi2": "max_cramers_v",
    "drift.unseen": "max_unseen_fraction",
}


@dataclass(frozen=True)
class Snapshot:
    """A snapshot as the gate sees it: typed by the contract, plus what typing found in the file."""

    typed: pd.DataFrame
    columns: list[str] = field(default_factory=list)  # the file's header, as written
    problems: list[str] = field(default_factory=list)  # contract violations found while typing
    file_nulls: dict[str, int] | None = None  # per column: cells empty in the file itself

    @classmethod
    def of(cls, typed: pd.DataFrame) -> Snapshot:
        """An in-memory frame already typed by the contract (benchmarks, tests)."""
        return cls(typed, [str(c) for c in typed.columns])


def read_snapshot(path: str | Path, contract: Contract) -> Snapshot:
    raw = read_table(path)
    typed, problems = coerce_to_contract(raw, contract)
    present = [c for c in contract.column_names if c in raw.columns]
    nulls = {c: int(raw[c].isna().sum()) for c in present}
    return Snapshot(typed, [str(c) for c in raw.columns], problems, nulls)


def _drift_check(name: str, column: str, observed, policy: dict, reason: str = "", details=None) -> dict:
    key = DRIFT_KEYS[name]
    return make_check(
        name,
        "drift",
        observed,
        policy[key],
        "<=",
        reason,
        blocking=policy["blocking"],
        column=column,
        policy_key=f"data.drift.{key}",
        details=details,
    )


def _numeric_drift_checks(column: str, result: dict, policy: dict) -> list[dict]:
    shift, ref_std, ks = result["mean_shift_sigma"], result["reference"]["std"], result["ks"]
    constant = f"{column_label(column)}: reference is constant and the current mean differs"
    return [
        _drift_check(
            "drift.mean_shift",
            column,
            shift,
            policy,
            constant if ref_std == 0 and shift else "",
            {
                "reference_mean": result["reference"]["mean"],
                "current_mean": result["current"]["mean"],
                "reference_std": ref_std,
                "unit": "reference standard deviations",
            },
        ),
        _drift_check("drift.psi", column, result["psi"], policy, details={"bins": result["psi_bins"]}),
        _drift_check(
            "drift.ks",
            column,
            ks["statistic"],
            policy,
            details={
                "p_value": ks["p_value"],
                "statistic_upper_bound": ks["upper_bound"],
                "exact": ks["upper_bound"] - ks["statistic"] < 1e-12,
                "refined_bins": ks["refined_bins"],
            },
        ),
    ]


def _categorical_drift_checks(column: str, result: dict, policy: dict) -> list[dict]:
    unseen = result["unseen_categories"]
    chi2 = result["chi2"]
    return [
        _drift_check("drift.psi", column, result["psi"], policy),
        _drift_check(
            "drift.chi2",
            column,
            chi2["cramers_v"],
            policy,
            details={"statistic": chi2["statistic"], "p_value": chi2["p_value"], "effect_size": "Cramér's V"},
        ),
        _drift_check(
            "drift.unseen",
            column,
            result["unseen_fraction"],
            policy,
            f"categories absent from the reference: {', '.join(unseen)}"
            if unseen
            else "no categories outside the reference",
            {"unseen_categories": unseen} if unseen else None,
        ),
    ]


def _not_measured(column: str, reason: str, policy: dict) -> dict:
    return make_check(
        "drift", "drift", None, None, "<=", reason, skipped=True, blocking=policy["blocking"], column=column
    )


def drift_checks(column: str, result: dict | None, policy: dict) -> list[dict]:
    """The drift checks of one feature (`result` None: the column is missing from a snapshot)."""
    if result is None:
        return [_not_measured(column, "column missing (see contract checks)", policy)]
    if "unmeasurable" in result:
        return [_not_measured(column, result["unmeasurable"], policy)]
    if result["kind"] == "numeric":
        return _numeric_drift_checks(column, result, policy)
    return _categorical_drift_checks(column, result, policy)


def _feature_summary(result: dict | None, checks: list[dict]) -> dict:
    if result is None:
        return {"kind": "missing", "drifted": False}
    summary = {"kind": result["kind"], "drifted": any(not c["passed"] for c in checks if not c["skipped"])}
    for key in ("psi", "mean_shift_sigma", "unseen_fraction"):
        if key in result:
            summary[key] = result[key]
    if "ks" in result:
        summary["ks_statistic"] = result["ks"]["statistic"]
        summary["ks_p_value"] = result["ks"]["p_value"]
    if "chi2" in result:
        summary["cramers_v"] = result["chi2"]["cramers_v"]
        summary["chi2_p_value"] = result["chi2"]["p_value"]
    if "unmeasurable" in result:
        summary["unmeasurable"] = result["unmeasurable"]
    return summary


def _drift(contract: Contract, reference: pd.DataFrame, current: pd.DataFrame, policy: dict):
    """Drift checks of every feature, the per-feature table, and histograms of the drifted ones."""
    features = [(c.name, c.dtype) for c in contract.features]
    present = [(n, d) for n, d in features if n in current.columns and n in reference.columns]
    results = drift_all(reference, current, present, policy)
    checks: list[dict] = []
    table: dict[str, dict] = {}
    histograms: list[dict] = []
    for name, _dtype in features:
        result = results.get(name)
        display = result.pop("_display", None) if result else None
        feature_checks = drift_checks(name, result, policy)
        checks += feature_checks
        table[name] = _feature_summary(result, feature_checks)
        if table[name]["drifted"] and display is not None:
            histograms.append({"feature": name, **display()})
    return checks, table, histograms


def evaluate_data(
    contract: Contract,
    reference: Snapshot,
    current: Snapshot,
    policy: dict,
    *,
    as_of: datetime | None = None,
) -> dict:
    """All data-gate checks on two snapshots; returns finalized evidence with an empty subject."""
    as_of = as_of or datetime.now(UTC)
    data_policy = policy["data"]
    cur, ref = current.typed, reference.typed
    checks = contract_checks(contract, current.columns, current.problems, cur)
    checks.append(reference_check(reference.problems, len(ref)))
    checks += volume_checks(len(cur), len(ref), data_policy["volume"])
    checks += null_checks(
        contract, cur, ref, data_policy["nulls"],
        current_nulls=current.file_nulls, reference_nulls=reference.file_nulls,
    )
    checks += label_checks(contract, cur, data_policy["labels"])
    checks.append(duplicate_check(cur, data_policy["duplicates"]))
    checks += freshness_checks(contract, cur, ref, data_policy["freshness"], as_of)
    drift, feature_table, histograms = _drift(contract, ref, cur, data_policy["drift"])
    extra = {
        "as_of": as_of.isoformat(),
        "drift_detected": False,
        "drifted_features": [],
        "data": {"rows": len(cur), "reference_rows": len(ref), "features": feature_table},
        "plots": {"histograms": histograms},
        "policy": policy_record(policy),
    }
    return new_evidence("data", checks + drift, subject={}, extra=extra)


def run_data_gate(
    contract_path: str | Path,
    reference_path: str | Path,
    current_path: str | Path,
    policy_path: str | Path | None = None,
    out_dir: str | Path = ".",
    *,
    stem: str = "data-evidence",
    as_of: datetime | None = None,
) -> dict:
    """Run the data gate on files and write `<stem>.json/.md/.html` into out_dir.

    Unreadable input raises SluiceError; a readable snapshot that breaks its contract is a
    failed check in the evidence. The returned evidence carries `passed`, `verdict`,
    `drift_detected` and `decision` ("no-op", "retrain" or "blocked").
    """
    contract = load_contract(contract_path)
    policy = load_policy(policy_path, contract.name)
    current = read_snapshot(current_path, contract)
    reference = read_snapshot(reference_path, contract)
    evidence = evaluate_data(contract, reference, current, policy, as_of=as_of)
    evidence["subject"] = {
        "model": contract.name,
        "data_sha256": sha256_file(current_path),
        "reference_sha256": sha256_file(reference_path),
        "contract_sha256": contract.sha256,
        "code_commit": code_commit(),
        "data_path": str(current_path),
        "reference_path": str(reference_path),
        "contract_path": str(contract_path),
    }
    finalize(evidence)
    write_evidence(evidence, out_dir, stem)
    return evidence
