"""`sluice monitor`: every evaluation recorded with its evidence ("no drift: nothing triggered"
included); a drifted snapshot triggers once and never again; a cool-down spaces retrainings; in a
cluster the trigger is the signed event, accepted by the retraining trigger's own checks."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest

from ml.data.demo import CURRENT_PERIOD, Drift, generate, to_csv_bytes
from sluice import tags
from sluice.triggers.monitor import experiment_name
from tests.conftest import REPO_ROOT
from tests.ml.conftest import LENIENT_POLICY, sqlite_versions
from tests.sluice.triggers import listener

STRONG = Drift(income_factor=1.6, rate_shift=3.0, consolidation_shift=0.1)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Two different snapshots, both far from the reference (seeded: the same bytes every run)."""
    out = tmp_path_factory.mktemp("drifted")
    first, second = out / "drifted-1.csv", out / "drifted-2.csv"
    first.write_bytes(to_csv_bytes(generate(3000, 101, CURRENT_PERIOD, STRONG)))
    second.write_bytes(to_csv_bytes(generate(3000, 102, CURRENT_PERIOD, STRONG)))
    return first, second


def evaluations(home: Path) -> list:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment_name("credit-default"))
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time ASC"])
    return [(r, [a.path for a in client.list_artifacts(r.info.run_id, "evidence")]) for r in runs]


def monitor(sluice, demo_slice, home: Path, current: Path, *extra) -> object:
    return sluice(
        "monitor",
        "--model",
        "credit-default",
        "--current",
        current,
        "--reference",
        demo_slice.reference,
        "--contract",
        demo_slice.contract,
        "--home",
        home,
        *extra,
    )


def test_no_drift_is_recorded_with_its_evidence(sluice, demo_slice, tmp_path) -> None:
    home = tmp_path / "home"
    done = monitor(sluice, demo_slice, home, demo_slice.reference, "--no-retrain")
    assert done.code == 0, done.err
    assert "no-drift: no drift: nothing triggered" in done.out
    [(run, artifacts)] = evaluations(home)
    assert run.data.tags[tags.TRIGGER_DECISION] == "no-drift"
    assert run.data.tags[tags.DATA_SHA256] == run.data.tags[tags.REFERENCE_SHA256]
    assert "evidence/data-evidence.json" in artifacts and "evidence/data-evidence.html" in artifacts
    assert run.data.metrics["drift_detected"] == 0.0


def test_a_drifted_snapshot_triggers_once_and_never_again(sluice, demo_slice, drifted, tmp_path) -> None:
    home = tmp_path / "home"
    first = monitor(sluice, demo_slice, home, drifted[0], "--no-retrain")
    assert first.code == 0 and "triggered: drift in" in first.out and "annual_income" in first.out
    again = monitor(sluice, demo_slice, home, drifted[0], "--no-retrain")
    assert again.code == 0 and "duplicate:" in again.out and "never twice" in again.out
    other = monitor(sluice, demo_slice, home, drifted[1], "--no-retrain")
    assert other.code == 0 and "cooldown:" in other.out and "retrain_cooldown_hours (24)" in other.out
    decisions = [
        (r.data.tags[tags.TRIGGER_DECISION], r.data.tags[tags.DATA_SHA256][:8]) for r, _ in evaluations(home)
    ]
    assert [d for d, _ in decisions] == ["triggered", "duplicate", "cooldown"]
    assert decisions[0][1] == decisions[1][1] != decisions[2][1]
    assert all(artifacts for _, artifacts in evaluations(home)), "every evaluation keeps its evidence"


def test_without_a_cooldown_each_new_drifted_snapshot_triggers_once(sluice, demo_slice, drifted, tmp_path):
    policy = tmp_path / "no-cooldown.yaml"
    policy.write_text(
        "apiVersion: sluice.dev/v1\nkind: GatePolicy\nname: no-cooldown\n"
        "data:\n  drift:\n    retrain_cooldown_hours: 0\n"
    )
    home = tmp_path / "home"
    for current in (*drifted, *drifted):
        assert monitor(sluice, demo_slice, home, current, "--policy", policy, "--no-retrain").code == 0
    decisions = [r.data.tags[tags.TRIGGER_DECISION] for r, _ in evaluations(home)]
    assert decisions == ["triggered", "triggered", "duplicate", "duplicate"]


def test_in_a_cluster_the_trigger_is_a_signed_event_the_listener_accepts(
    sluice, demo_slice, drifted, tmp_path
):
    secret = secrets.token_hex(32)
    secret_file = tmp_path / "trigger-secret"
    secret_file.write_text(secret + "\n")
    declaration = REPO_ROOT / "apps" / "credit-default" / "training" / "retraining.yaml"
    home = tmp_path / "home"
    with listener.serve(secret.encode()) as el:
        local = tmp_path / "retraining.yaml"
        local.write_text(
            declaration.read_text().replace(
                "http://el-sluice-github.sluice-ci.svc.cluster.local:8080", el.url
            )
        )
        posted = monitor(
            sluice, demo_slice, home, drifted[0], "--post", "--schedule", local, "--secret-file", secret_file
        )
        repeated = monitor(
            sluice, demo_slice, home, drifted[0], "--post", "--schedule", local, "--secret-file", secret_file
        )
    assert posted.code == 0, posted.err
    assert "posted drift event for credit-default" in posted.out
    assert len(el.accepted) == 1 and el.refused == [], "the repeat is a duplicate: nothing posted"
    body = el.accepted[0]["body"]["sluice"]
    assert body["event"] == "drift" and body["data"]["path"] == "/data/credit-default/current.csv"
    assert "annual_income" in body["reason"]
    assert repeated.code == 0 and "duplicate:" in repeated.out
    (triggered, _), _ = evaluations(home)
    assert triggered.data.tags[tags.TRIGGER_OUTCOME] == "posted"


def test_bad_input_is_one_line(sluice, demo_slice, tmp_path) -> None:
    missing = sluice("monitor", "--model", "credit-default", "--current", tmp_path / "nope.csv")
    assert missing.code == 2 and len(missing.err_lines) == 1 and "--current file not found" in missing.err
    no_reference = sluice("monitor", "--model", "credit-default", "--current", demo_slice.current)
    assert no_reference.code == 2 and "--reference is required" in no_reference.err
    wrong_model = sluice(
        "monitor",
        "--model",
        "fraud",
        "--current",
        demo_slice.current,
        "--reference",
        demo_slice.reference,
        "--contract",
        demo_slice.contract,
    )
    assert wrong_model.code == 2 and "describes 'credit-default', not --model 'fraud'" in wrong_model.err


@pytest.mark.slow
def test_a_drift_trigger_retrains_here_once_and_new_data_is_keyed_by_the_run_key(
    sluice, demo_slice, drifted, tmp_path
) -> None:
    """The laptop loop: drift retrains with `sluice run`'s engine (one version), never twice for the
    snapshot; a snapshot `sluice run` already trained is not retrained on arrival (the same run key)."""
    home = tmp_path / "home"
    common = ("--policy", LENIENT_POLICY, "--no-promote")
    retrained = monitor(sluice, demo_slice, home, drifted[0], *common)
    assert retrained.code == 0, retrained.out + retrained.err
    assert sqlite_versions(home) == [1]
    assert monitor(sluice, demo_slice, home, drifted[0], *common).code == 0
    assert sqlite_versions(home) == [1], "the same snapshot never retrains twice"

    trained = sluice(
        "run",
        "--data",
        drifted[1],
        "--contract",
        demo_slice.contract,
        "--reference",
        demo_slice.reference,
        "--policy",
        LENIENT_POLICY,
        "--home",
        home,
        "--no-promote",
    )
    assert trained.code == 0, trained.err
    arrival = monitor(sluice, demo_slice, home, drifted[1], "--on-new-data", *common)
    assert arrival.code == 0 and "duplicate:" in arrival.out and "run key" in arrival.out
    assert sqlite_versions(home) == [1, 2]
    runs = [r for r, _ in evaluations(home)]
    assert runs[0].data.tags[tags.TRIGGER_OUTCOME] == "registered v1"
    assert [r.data.tags[tags.TRIGGER_DECISION] for r in runs] == ["triggered", "duplicate", "duplicate"]
