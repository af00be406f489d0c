"""The data gate: is the current snapshot fit to train on, and has it drifted from the reference?

Two separate answers, on purpose. `passed` says whether the data may be used at all (contract,
volume, nulls, labels, duplicates, freshness; drift too if the policy makes it blocking).
`drift_detected` says whether retraining is warranted; a passing run without drift is a
"no-op run" that still leaves evidence, so the record shows the data was looked at and why
nothing was retrained.
"""

from __future__ import annotations

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
from ml.data.contract import Contract, coerce_to_contract, load_contract, read_table, sha256_file
from sluice.git import code_commit


def _drift_checks(name: str, result: dict, policy: dict) -> list[dict]:
    blocking = policy["blocking"]
    prefix = f"drift.{name}"
    if "unmeasurable" in result:
        return [
            make_check(
                prefix,
                "drift",
                None,
                None,
                "<=",
                f"{name}: {result['unmeasurable']}",
                skipped=True,
                blocking=blocking,
            )
        ]
    if result["kind"] == "numeric":
        shift = result["mean_shift_sigma"]
        ref_std = result["reference"]["std"]
        ks = result["ks"]
        exact = ks["upper_bound"] - ks["statistic"] < 1e-12
        return [
            make_check(
                f"{prefix}.mean_shift",
                "drift",
                shift,
                policy["max_mean_shift_sigma"],
                "<=",
                f"{name}: reference is constant and the current mean differs"
                if ref_std == 0 and shift
                else "",
                blocking=blocking,
                details={
                    "reference_mean": result["reference"]["mean"],
                    "current_mean": result["current"]["mean"],
                    "reference_std": ref_std,
                    "unit": "reference standard deviations",
                },
            ),
            make_check(
                f"{prefix}.psi",
                "drift",
                result["psi"],
                policy["max_psi"],
                "<=",
                blocking=blocking,
                details={"bins": result["psi_bins"]},
            ),
            make_check(
                f"{prefix}.ks",
                "drift",
                ks["statistic"],
                policy["max_ks_statistic"],
                "<=",
                blocking=blocking,
                details={
                    "p_value": ks["p_value"],
                    "statistic_upper_bound": ks["upper_bound"],
                    "exact": exact,
                    "refined_bins": ks["refined_bins"],
                },
            ),
        ]
    unseen = result["unseen_categories"]
    return [
        make_check(f"{prefix}.psi", "drift", result["psi"], policy["max_psi"], "<=", blocking=blocking),
        make_check(
            f"{prefix}.chi2",
            "drift",
            result["chi2"]["cramers_v"],
            policy["max_cramers_v"],
            "<=",
            blocking=blocking,
            details={
                "statistic": result["chi2"]["statistic"],
                "p_value": result["chi2"]["p_value"],
                "effect_size": "Cramér's V",
            },
        ),
        make_check(
            f"{prefix}.unseen",
            "drift",
            result["unseen_fraction"],
            policy["max_unseen_fraction"],
            "<=",
            (
                f"{name}: categories absent from the reference: {', '.join(unseen)}"
                if unseen
                else f"{name}: no categories outside the reference"
            ),
            blocking=blocking,
            details={"unseen_categories": unseen} if unseen else None,
        ),
    ]


def _feature_summary(result: dict, checks: list[dict]) -> dict:
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


def evaluate_data(
    contract: Contract,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    policy: dict,
    *,
    current_columns: list[str] | None = None,
    current_problems: list[str] | None = None,
    reference_problems: list[str] | None = None,
    as_of: datetime | None = None,
) -> dict:
    """All data-gate checks on contract-typed frames; returns finalized evidence with an empty subject."""
    as_of = as_of or datetime.now(UTC)
    data_policy = policy["data"]
    checks = contract_checks(
        contract,
        current_columns if current_columns is not None else list(current.columns),
        current_problems or [],
        current,
    )
    checks.append(reference_check(reference_problems or [], len(reference)))
    checks += volume_checks(len(current), len(reference), data_policy["volume"])
    checks += null_checks(contract, current, reference, data_policy["nulls"])
    checks += label_checks(contract, current, data_policy["labels"])
    checks.append(duplicate_check(current, data_policy["duplicates"]))
    checks += freshness_checks(contract, current, reference, data_policy["freshness"], as_of)

    drift_policy = data_policy["drift"]
    features = [(c.name, c.dtype) for c in contract.features]
    measurable = [(n, d) for n, d in features if n in current.columns and n in reference.columns]
    results = drift_all(reference, current, measurable, drift_policy)
    feature_table: dict[str, dict] = {}
    histograms = []
    for name, _dtype in features:
        if name not in results:
            checks.append(
                make_check(
                    f"drift.{name}",
                    "drift",
                    None,
                    None,
                    "<=",
                    f"{name}: column missing (see contract checks)",
                    skipped=True,
                    blocking=drift_policy["blocking"],
                )
            )
            feature_table[name] = {"kind": "missing", "drifted": False}
            continue
        result = results[name]
        display = result.pop("_display", None)
        feature_checks = _drift_checks(name, result, drift_policy)
        checks += feature_checks
        feature_table[name] = _feature_summary(result, feature_checks)
        if feature_table[name]["drifted"] and display is not None:
            histograms.append({"feature": name, **display()})
    drifted = [name for name, row in feature_table.items() if row["drifted"]]
    evidence = new_evidence(
        "data",
        checks,
        subject={},
        extra={
            "as_of": as_of.isoformat(),
            "drift_detected": bool(drifted),
            "drifted_features": drifted,
            "data": {"rows": len(current), "reference_rows": len(reference), "features": feature_table},
            "plots": {"histograms": histograms},
            "policy": policy_record(policy),
        },
    )
    return finalize(evidence)


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
    failed check in the evidence. The returned evidence carries `passed`, `drift_detected`
    and `decision` ("no-op", "retrain" or "blocked") for the pipeline to branch on.
    """
    contract = load_contract(contract_path)
    policy = load_policy(policy_path, contract.name)
    current_raw = read_table(current_path)
    reference_raw = read_table(reference_path)
    current, current_problems = coerce_to_contract(current_raw, contract)
    reference, reference_problems = coerce_to_contract(reference_raw, contract)
    evidence = evaluate_data(
        contract,
        reference,
        current,
        policy,
        current_columns=[str(c) for c in current_raw.columns],
        current_problems=current_problems,
        reference_problems=reference_problems,
        as_of=as_of,
    )
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
