"""Gate steps: run the data gate and the model gate inside the pipeline and report their verdicts.

The judging itself lives in `gates`; these adapters turn artifact directories into the gates'
inputs, and their evidence into the values the pipeline branches on. Each step's marker carries
the one summary of its evidence (`gates.evidence.summary`): verdict, counts, the headline the
progress line shows and the refusal line `sluice run` prints, so no reader recounts the checks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.components.artifacts import evidence_json, only_file
from ml.components.markers import step
from sluice.digest import sha256_file


def verdict_fields(evidence: dict, evidence_dir: str) -> dict[str, Any]:
    """What a gate step's marker says about its verdict, from the evidence it wrote."""
    from gates.evidence import summarize
    from gates.evidence.history import describe_attempt
    from gates.evidence.summary import INCONCLUSIVE

    summary = summarize(evidence)
    json_path = evidence_json(evidence_dir)
    attempt = describe_attempt(json_path)
    return {
        "passed": summary.passed,
        "verdict": summary.verdict,
        "inconclusive": summary.verdict == INCONCLUSIVE,
        "status": summary.status,
        "counts": summary.counts,
        "headline": summary.headline(),
        "reason": summary.reason(),
        "refusal": "" if summary.passed else summary.refusal(),
        "evidence": str(json_path),
        "evidence_sha256": attempt.sha256,
        "attempt": attempt.attempt,
    }


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
        fields = verdict_fields(evidence, out_dir)
        drift = bool(evidence.get("drift_detected", True))
        train = fields["passed"] and (drift or not retrain_only_on_drift)
        if fields["passed"] and not train:
            fields["status"] = "no-op"  # passed, no drift, and training was wanted only on drift
        report.update(
            fields,
            train=train,
            drift_detected=drift,
            decision=evidence.get("decision"),
            checks=len(evidence.get("checks", [])),
        )
    return fields["passed"], train, fields["reason"]


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
        fields = verdict_fields(evidence, out_dir)
        report.update(
            fields,
            checks=[
                {
                    "name": c.get("name"),
                    "column": c.get("column"),
                    "passed": c.get("passed"),
                    "observed": c.get("observed"),
                }
                for c in evidence.get("checks", [])
            ],
        )
    return fields["passed"], fields["reason"]
