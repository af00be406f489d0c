"""`sluice gate data|model` exit codes: 0 passed, 1 failed with evidence, 2 usage/input error."""

from __future__ import annotations

import time

import pytest

from gates.evidence import load_evidence
from sluice.cli import main
from tests.conftest import free_port
from tests.gates.conftest import make_frame


@pytest.fixture
def snapshots(tmp_path, reference_frame, current_frame):
    ref, cur = tmp_path / "reference.csv", tmp_path / "current.csv"
    reference_frame.to_csv(ref, index=False)
    current_frame.to_csv(cur, index=False)
    return ref, cur


def _data_args(contract_path, ref, cur, policy, out):
    return [
        "gate",
        "data",
        "--contract",
        str(contract_path),
        "--reference",
        str(ref),
        "--current",
        str(cur),
        "--policy",
        str(policy),
        "--as-of",
        "2024-03-01T00:00:00+00:00",
        "--out",
        str(out),
    ]


def test_data_gate_passing_exits_0(contract_path, snapshots, policy_file, tmp_path, capsys):
    out = tmp_path / "ev" / "data.json"
    assert main(_data_args(contract_path, *snapshots, policy_file(), out)) == 0
    assert "Data gate PASSED" in capsys.readouterr().out
    assert load_evidence(out)["passed"]
    assert (tmp_path / "ev" / "data.md").exists() and (tmp_path / "ev" / "data.html").exists()


def test_data_gate_failing_exits_1_and_leaves_evidence(
    contract_path, snapshots, policy_file, tmp_path, capsys
):
    out = tmp_path / "ev" / "data.json"
    policy = policy_file({"data": {"volume": {"min_rows": 10_000}}})
    assert main(_data_args(contract_path, *snapshots, policy, out)) == 1
    printed = capsys.readouterr().out
    assert "FAIL volume.min_rows" in printed
    assert not load_evidence(out)["passed"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"current": "missing.csv"}, "data file not found"),
        ({"out": "evidence.txt"}, "--out must name a .json file"),
        ({"policy": "missing-policy.yaml"}, "policy not found"),
    ],
)
def test_data_gate_input_errors_exit_2_with_one_line(
    contract_path, snapshots, policy_file, tmp_path, capsys, change, message
):
    ref, cur = snapshots
    args = {"current": cur, "policy": policy_file(), "out": tmp_path / "ev" / "data.json"}
    args.update({k: tmp_path / v for k, v in change.items()})
    assert main(_data_args(contract_path, ref, args["current"], args["policy"], args["out"])) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sluice: error:") and message in err[0]
    assert not (tmp_path / "ev").exists()


def test_malformed_csv_exits_2(contract_path, tmp_path, policy_file, capsys):
    ref = tmp_path / "reference.csv"
    make_frame(100, 1).to_csv(ref, index=False)
    bad = tmp_path / "bad.csv"
    bad.write_text('ts,group\n"2024-01-01,a\n')
    assert main(_data_args(contract_path, ref, bad, policy_file(), tmp_path / "x.json")) == 2
    assert "cannot parse CSV" in capsys.readouterr().err


def test_bad_as_of_exits_2(contract_path, snapshots, policy_file, tmp_path, capsys):
    args = _data_args(contract_path, *snapshots, policy_file(), tmp_path / "x.json")
    args[args.index("--as-of") + 1] = "yesterday"
    assert main(args) == 2 and "--as-of must be an ISO 8601 time" in capsys.readouterr().err


def test_missing_required_argument_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["gate", "data", "--contract", "c.yaml"])
    assert exc.value.code == 2


def test_model_gate_unreachable_server_fails_fast(tmp_path, capsys):
    started = time.monotonic()
    code = main(
        [
            "gate",
            "model",
            "--model",
            "m",
            "--version",
            "1",
            "--tracking-uri",
            f"http://127.0.0.1:{free_port()}",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 2 and time.monotonic() - started < 15
    assert "unreachable" in capsys.readouterr().err


def test_model_gate_without_a_local_store_exits_2(tmp_path, capsys):
    code = main(
        [
            "gate",
            "model",
            "--model",
            "m",
            "--version",
            "1",
            "--home",
            str(tmp_path / "home"),
            "--tracking-uri",
            f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}",
            "--out",
            str(tmp_path / "m.json"),
        ]
    )
    assert code == 2 and "no MLflow store" in capsys.readouterr().err
    assert not (tmp_path / "home").exists()
