"""Gate steps: run the data gate and the model gate inside the pipeline and report their verdicts.

The judging itself lives in `gates`; these adapters turn artifact directories into the gates'
inputs, and their evidence into the values the pipeline branches on.
"""

from __future__ import annotations

from pathlib import Path

from ml.components.artifacts import evidence_json, only_file
from ml.components.markers import step
from sluice.digest import sha256_file


def reason_line(evidence: dict) -> str:
    """The one sentence that says why a gate failed (or that it passed)."""
    failed = [c for c in evidence.get("checks", []) if not c.get("passed", True)]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
        return f"{first.get('name')}: {first.get('reason')}{more}"
    return evidence.get("summary") or ("passed" if evidence.get("passed") else "failed")


def data_gate(
    contract_dir: str,
    reference_dir: str,
    current_dir: str,
    policy_uri: str,
    out_dir: str,
    retrain_only_on_drift: bool = False,
) -> tuple[bool, bool, str]:
    """Run the data gate; returns (passed, train, reason).

    `train` is what the pipeline branches on: the gate passed, and, when retraining is wanted
    only on drift, the gate found some (else this is a no-op run that still leaves evidence).
    """
    from gates.data_gate import run_data_gate

    with step("data-gate") as report:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        evidence = run_data_gate(
            only_file(contract_dir),
            only_file(reference_dir),
            only_file(current_dir),
            policy_uri or None,
            out_dir=out_dir,
        )
        passed = bool(evidence["passed"])
        drift = bool(evidence.get("drift_detected", True))
        train = passed and (drift or not retrain_only_on_drift)
        reason = reason_line(evidence)
        report.update(
            passed=passed,
            train=train,
            drift_detected=drift,
            decision=evidence.get("decision"),
            reason=reason,
            evidence=str(evidence_json(out_dir)),
            checks=len(evidence.get("checks", [])),
        )
    return passed, train, reason


def inconclusive(evidence: dict) -> bool:
    """The gate failed only on checks it could not judge (the host was too noisy to measure latency)."""
    failed = [c for c in evidence.get("checks", []) if not c.get("passed", True) and c.get("blocking", True)]
    return bool(failed) and all(c.get("inconclusive") for c in failed)


def model_gate(
    *,
    model_uri: str,
    holdout_dir: str,
    contract_dir: str,
    policy_uri: str,
    tracking_uri: str,
    model_name: str,
    subject: dict,
    out_dir: str,
) -> tuple[bool, str]:
    import os

    import pandas as pd

    from ml.data.contract import load_contract
    from ml.registry.client import connect
    from ml.serving.lifecycle import RUN_PID_ENV, exit_with

    # This task process starts a model server (which dies with it, PR_SET_PDEATHSIG). If the local
    # runner above it is killed, even by SIGKILL, this process ends too (on a cluster: the pod).
    if os.environ.get(RUN_PID_ENV):
        exit_with(int(os.environ[RUN_PID_ENV]))
    with step("model-gate") as report:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        # skops before MLflow: importing skops.io looks up the module of every scikit-learn type with
        # pickle.whichmodule, which scans sys.modules; with MLflow's thousands of modules loaded first
        # that costs ~1.5 s more (measured: 4.3 s vs 6.0 s for both imports at load average 7).
        import skops.io  # noqa: F401

        connect(tracking_uri)
        from gates.model_gate import run_model_gate

        holdout_path = only_file(holdout_dir, "*.parquet")
        subject = {**subject, "holdout_sha256": sha256_file(holdout_path)}
        evidence = run_model_gate(
            model_uri,
            pd.read_parquet(holdout_path),
            load_contract(only_file(contract_dir)),
            policy_uri or None,
            tracking_uri=tracking_uri,
            model_name=model_name,
            champion_alias="champion",
            subject=subject,
            out_dir=out_dir,
        )
        passed = bool(evidence["passed"])
        reason = reason_line(evidence)
        report.update(
            passed=passed,
            inconclusive=inconclusive(evidence),
            reason=reason,
            evidence=str(evidence_json(out_dir)),
            checks=[
                {"name": c.get("name"), "passed": c.get("passed"), "observed": c.get("observed")}
                for c in evidence.get("checks", [])
            ],
        )
    return passed, reason
