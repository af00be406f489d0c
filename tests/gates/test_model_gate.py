"""The model gate against a real MLflow server (PostgreSQL backend) with really served models.

Two small Sluice pipelines are registered the way the training pipeline does it (sklearn + onnx
flavor, holdout and contract logged on the run under data/): a good one and a weak one, so
regularised it barely separates the classes. The first gate run is a first deployment (no
champion); then the good version becomes champion and the weak one must fail the regression
check on the same holdout. A version logged without the onnx flavor is refused unserved.
"""

from __future__ import annotations

import hashlib
import json
import uuid

import pandas as pd
import pytest

from gates.evidence import load_evidence
from sluice.cli import main
from sluice.errors import SluiceError
from tests.gates.conftest import CONTRACT, TEST_POLICY, make_frame, write_yaml

pytestmark = pytest.mark.slow

CANDIDATES = {"good": {"max_iter": 500}, "weak": {"C": 1e-5, "max_iter": 500}}


@pytest.fixture(scope="module")
def registry(mlflow_server, tmp_path_factory):
    import mlflow

    from ml.components.log import model_requirements
    from ml.data.contract import coerce_to_contract, load_contract
    from ml.serving.export import log_model
    from ml.training.candidates import build_model

    work = tmp_path_factory.mktemp("model-gate")
    contract_path = write_yaml(work / "contract.yaml", CONTRACT)
    contract = load_contract(contract_path)
    train, _ = coerce_to_contract(make_frame(1500, 11), contract)
    holdout_raw = make_frame(600, 12)
    holdout_path = work / "holdout.parquet"
    holdout_raw.to_parquet(holdout_path)
    y = train["default"].astype(int)
    name = f"gate-test-{uuid.uuid4().hex[:8]}"
    mlflow.set_tracking_uri(mlflow_server)
    versions = {}
    try:
        for label, params in (*CANDIDATES.items(), ("unexported", CANDIDATES["good"])):
            model = build_model(contract, "logistic_regression", params, seed=7).fit(train, y)
            log = mlflow.sklearn.log_model if label == "unexported" else log_model
            with mlflow.start_run():
                info = log(
                    model, name="model", registered_model_name=name, serialization_format="cloudpickle",
                    pip_requirements=model_requirements(),
                )  # fmt: skip
                mlflow.log_artifact(str(holdout_path), "data")
                mlflow.log_artifact(str(contract_path), "data")
            versions[label] = str(info.registered_model_version)
    finally:
        mlflow.set_tracking_uri(None)  # also clears MLFLOW_TRACKING_URI, which it had set
    from mlflow import MlflowClient

    yield {
        "url": mlflow_server,
        "name": name,
        "versions": versions,
        "contract": contract,
        "holdout": holdout_raw,
        "holdout_sha256": hashlib.sha256(holdout_path.read_bytes()).hexdigest(),
        "client": MlflowClient(mlflow_server, registry_uri=mlflow_server),
        "policy": write_yaml(work / "policy.yaml", TEST_POLICY),
    }


def _check(evidence: dict, name: str) -> dict:
    return next(c for c in evidence["checks"] if c["name"] == name)


def test_first_deployment_passes_serves_the_model_and_attaches_evidence(registry, tmp_path, capsys):
    version = registry["versions"]["good"]
    out = tmp_path / "model-evidence.json"
    code = main(
        [
            "gate",
            "model",
            "--model",
            registry["name"],
            "--version",
            version,
            "--tracking-uri",
            registry["url"],
            "--policy",
            str(registry["policy"]),
            "--out",
            str(out),
        ]
    )
    evidence = load_evidence(out)
    assert code == 0, [c for c in evidence["checks"] if not c["passed"]]
    assert "Model gate PASSED" in capsys.readouterr().out

    regression = _check(evidence, "regression.f1_vs_champion")
    assert regression["skipped"] and "first deployment" in regression["reason"]
    assert evidence["champion"] is None

    latency = evidence["latency"]
    offered = TEST_POLICY["model"]["latency"]
    assert latency["requests"] == offered["requests"] and latency["errors"] == 0
    assert latency["offered_rps"] == offered["rate_rps"] and latency["concurrency"] == offered["concurrency"]
    assert 0 < latency["p50_ms"] <= latency["p95_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    # paced: the answered rate cannot exceed the offered one (n requests over >= (n - 1) / rate s)
    n, rate = offered["requests"], offered["rate_rps"]
    assert 0 < latency["achieved_rps"] <= n / ((n - 1) / rate)
    assert latency["throughput_rps"] > 0 and "python -m ml.serving" in latency["server"]
    assert latency["capacity_headroom"] == latency["throughput_rps"] / offered["rate_rps"]
    assert latency["verdict"] == "passed" and latency["hiccup_samples"] > 0
    assert latency["hiccup_p99_ms"] >= 0 and latency["own_send_lag_p99_ms"] >= 0
    assert latency["ready_wait_s"] <= latency["startup_s"]
    assert _check(evidence, "serving.export")["passed"]
    parity = _check(evidence, "serving.parity")
    assert parity["passed"] and parity["details"]["rows"] == 600, parity["reason"]
    assert sum(evidence["plots"]["latency_histogram"]["counts"]) == latency["requests"]
    assert _check(evidence, "latency.achieved_rps")["passed"]
    assert f"open-loop at {rate} req/s" in out.with_suffix(".md").read_text()
    assert sum(map(sum, evidence["plots"]["confusion_matrix"]["matrix"])) == 600

    fairness = _check(evidence, "fairness.equal_opportunity_difference")
    assert set(fairness["details"]["tpr"]) == {"a", "b"}
    assert evidence["subject"]["holdout_sha256"] == registry["holdout_sha256"]
    assert evidence["subject"]["model_uri"] == f"models:/{registry['name']}/{version}"

    client = registry["client"]
    mv = client.get_model_version(registry["name"], version)
    digest = hashlib.sha256(out.read_bytes()).hexdigest()
    assert mv.tags["sluice.evidence_sha256"] == digest
    assert mv.tags["sluice.evidence_passed"] == "true"
    attempt = mv.tags["sluice.evidence_attempt"]
    assert attempt.endswith("-" + digest[:12])  # the attempt is named after its document
    assert mv.tags["sluice.evidence_artifact"] == f"evidence/{attempt}/model-evidence.json"
    logged = sorted(a.path for a in client.list_artifacts(mv.run_id, f"evidence/{attempt}"))
    assert logged == [
        f"evidence/{attempt}/model-evidence.html",
        f"evidence/{attempt}/model-evidence.json",
        f"evidence/{attempt}/model-evidence.md",
    ]


def test_weaker_candidate_fails_regression_against_the_champion(registry, tmp_path, capsys):
    client = registry["client"]
    client.set_registered_model_alias(registry["name"], "champion", registry["versions"]["good"])
    try:
        out = tmp_path / "weak.json"
        code = main(
            [
                "gate",
                "model",
                "--model",
                registry["name"],
                "--version",
                registry["versions"]["weak"],
                "--tracking-uri",
                registry["url"],
                "--policy",
                str(registry["policy"]),
                "--out",
                str(out),
            ]
        )
    finally:
        client.delete_registered_model_alias(registry["name"], "champion")
    evidence = load_evidence(out)
    assert code == 1
    regression = _check(evidence, "regression.f1_vs_champion")
    assert not regression["passed"] and regression["observed"] < 0.95
    assert regression["details"]["champion_version"] == registry["versions"]["good"]
    assert evidence["champion"]["version"] == registry["versions"]["good"]
    assert evidence["metrics"]["champion"]["f1"] > evidence["metrics"]["candidate"]["f1"]
    printed = capsys.readouterr()
    assert "FAIL regression.f1_vs_champion" in printed.out
    refusal = printed.err.strip().splitlines()[-1]
    failing = [c["name"] for c in evidence["checks"] if c["blocking"] and not c["passed"]]
    assert "regression.f1_vs_champion" in failing  # the weak model may also miss the quality floor
    assert refusal.startswith(f"sluice: refused: model gate failed: {failing[0]}")
    policy_key = _check(evidence, failing[0])["policy_key"]
    assert refusal.endswith(f"{policy_key} in a gate policy and pass it with --policy FILE")
    mv = client.get_model_version(registry["name"], registry["versions"]["weak"])
    assert mv.tags["sluice.evidence_passed"] == "false"
    assert "sluice.evidence_reason" not in mv.tags  # versions carry no free-text reason to contradict
    assert main(
        ["evidence", "list", "--model", registry["name"], "--version", registry["versions"]["weak"],
         "--tracking-uri", registry["url"], "--format", "json"]
    ) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(a["kind"], a["verdict"], a["failing"]) for a in listed] == [
        ("model", "failed", failing)
    ]
    assert listed[0]["sha256"] == mv.tags["sluice.evidence_sha256"]


def test_a_version_logged_without_the_onnx_flavor_is_refused_unserved(registry, tmp_path, capsys):
    out = tmp_path / "unexported.json"
    code = main(
        [
            "gate", "model", "--model", registry["name"], "--version", registry["versions"]["unexported"],
            "--tracking-uri", registry["url"], "--policy", str(registry["policy"]), "--no-attach",
            "--out", str(out),
        ]
    )  # fmt: skip
    evidence = load_evidence(out)
    assert code == 1
    export = _check(evidence, "serving.export")
    assert not export["passed"]
    assert export["reason"] == (
        "no fast serving path: the model was logged without its onnx flavor; "
        "add it with: python -m ml.serving export DIR"
    )
    assert evidence["latency"]["failure"].startswith("no fast serving path")
    assert _check(evidence, "quality.f1")["passed"]  # the model itself is fine: only serving fails


def test_unknown_version_exits_2(registry, tmp_path, capsys):
    code = main(
        [
            "gate",
            "model",
            "--model",
            registry["name"],
            "--version",
            "999",
            "--tracking-uri",
            registry["url"],
            "--out",
            str(tmp_path / "x.json"),
        ]
    )
    assert code == 2 and "version 999 not found" in capsys.readouterr().err


def test_holdout_missing_a_feature_is_an_input_error(registry, tmp_path):
    from gates.model_gate import run_model_gate

    holdout: pd.DataFrame = registry["holdout"].drop(columns=["income"])
    with pytest.raises(SluiceError, match="missing column"):
        run_model_gate(
            f"models:/{registry['name']}/{registry['versions']['good']}",
            holdout,
            registry["contract"],
            tracking_uri=registry["url"],
            model_name=registry["name"],
            subject={},
            out_dir=tmp_path,
        )
    assert not (tmp_path / "model-evidence.json").exists()
