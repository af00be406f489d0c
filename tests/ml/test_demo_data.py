"""The demo data: deterministic bytes, honest to its contract, realistic, and a passing data gate."""

from __future__ import annotations

import hashlib
import os

import pytest

from ml.data.contract import load_contract, load_snapshot
from ml.data.demo import CONTRACT_PATH, ensure_demo, generate, write_demo


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_gives_the_same_bytes(tmp_path):
    first = write_demo(tmp_path / "a", reference_rows=2000, current_rows=1000)
    second = write_demo(tmp_path / "b", reference_rows=2000, current_rows=1000)
    assert first.sha256s() == second.sha256s()
    other = write_demo(tmp_path / "c", seed=7, reference_rows=2000, current_rows=1000)
    assert other.sha256s()["current.csv"] != first.sha256s()["current.csv"]


def test_demo_cli_writes_the_three_files_and_prints_their_digests(tmp_path, sluice):
    result = sluice("data", "demo", "--out", tmp_path, "--reference-rows", 500, "--current-rows", 400)
    assert result.code == 0, result.err
    printed = dict(line.split("  ", 1)[::-1] for line in result.out.splitlines())
    for name in ("reference.csv", "current.csv", "credit-default.contract.yaml"):
        path = tmp_path / name
        assert printed[str(path)] == _sha(path)
    assert (tmp_path / "credit-default.contract.yaml").read_bytes() == CONTRACT_PATH.read_bytes()
    assert len((tmp_path / "current.csv").read_text().splitlines()) == 401


def test_demo_cli_refuses_zero_rows(tmp_path, sluice):
    result = sluice("data", "demo", "--out", tmp_path, "--current-rows", 0)
    assert result.code == 2
    assert result.err_lines == ["sluice: error: --reference-rows and --current-rows must be at least 1"]


def test_full_demo_matches_its_contract_and_looks_like_credit_data(tmp_path):
    files = write_demo(tmp_path)
    contract = load_contract(files.contract)
    assert 12 <= len(contract.features) <= 20
    assert contract.sensitive_attribute == "sex"
    assert "sex" not in {c.name for c in contract.features}
    assert "application_date" not in {c.name for c in contract.features}
    kinds = {c.dtype for c in contract.features}
    assert {"float", "integer", "category"} <= kinds
    ref, ref_problems, _ = load_snapshot(files.reference, contract)
    cur, cur_problems, _ = load_snapshot(files.current, contract)
    assert ref_problems == [] and cur_problems == []
    assert len(ref) + len(cur) == 50_000
    for frame in (ref, cur):
        assert 0.15 <= frame["default"].mean() <= 0.25
    assert cur["application_date"].min() >= ref["application_date"].max()
    # the sensitive attribute plays no part in the default story
    rates = cur.groupby("sex")["default"].mean()
    assert abs(rates["female"] - rates["male"]) < 0.02
    # the current quarter drifts the way lending data does: rates up about half a point
    shift = cur["interest_rate"].mean() - ref["interest_rate"].mean()
    assert 0.3 < shift < 0.8


def test_full_demo_passes_the_default_data_gate(tmp_path):
    from gates.data_gate import run_data_gate

    files = write_demo(tmp_path / "demo")
    evidence = run_data_gate(files.contract, files.reference, files.current, out_dir=tmp_path / "evidence")
    failed = [(c["name"], c.get("column")) for c in evidence["checks"] if not c["passed"]]
    assert evidence["passed"], failed
    assert evidence["verdict"] == "passed" and evidence["counts"]["advisory_findings"] == 0
    psi = {c["column"]: c["observed"] for c in evidence["checks"] if c["name"] == "drift.psi"}
    assert psi and max(psi.values()) < 0.2
    assert psi["interest_rate"] > 0.01  # the drift is there, just small


def test_ensure_demo_reuses_an_intact_copy_and_repairs_an_edited_one(tmp_path):
    files = ensure_demo(tmp_path, reference_rows=300, current_rows=200)
    stamp = files.current.stat().st_mtime_ns
    os.utime(files.current, ns=(stamp - 10**9, stamp - 10**9))
    again = ensure_demo(tmp_path, reference_rows=300, current_rows=200)
    assert again.current.stat().st_mtime_ns == stamp - 10**9  # not rewritten
    expected = _sha(files.current)
    files.current.write_text(files.current.read_text().replace("female", "male", 1))
    repaired = ensure_demo(tmp_path, reference_rows=300, current_rows=200)
    assert _sha(repaired.current) == expected


@pytest.mark.parametrize("n", [1, 17])
def test_generate_handles_tiny_sizes(n):
    columns = generate(n, 1, ("2024-01-01", "2024-02-01"))
    assert all(len(v) == n for v in columns.values())
