"""`sluice run` on bad input, through the real CLI.

Two kinds of bad: input that cannot be read at all is a usage error (exit 2, one line, nothing
started); a readable snapshot that breaks its contract is judged by the data gate inside the
pipeline (exit 1, one reason line, evidence written, nothing trained or registered).
"""

from __future__ import annotations

import json

import pytest

from tests.ml.conftest import sqlite_versions


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("bad-input-home")


def _run(sluice, home, data, contract, reference):
    return sluice(
        "run",
        "--home",
        home,
        "--data",
        data,
        "--contract",
        contract,
        "--reference",
        reference,
        "--no-promote",
    )


# ---------------------------------------------------------------------------- usage errors (2)
def test_missing_data_file(sluice, tmp_path, demo_slice):
    result = _run(sluice, tmp_path, tmp_path / "nope.csv", demo_slice.contract, demo_slice.reference)
    assert result.code == 2
    assert result.err_lines == [f"sluice: error: data file not found: {tmp_path / 'nope.csv'}"]


def test_missing_contract_file(sluice, tmp_path, demo_slice):
    result = _run(sluice, tmp_path, demo_slice.current, tmp_path / "c.yaml", demo_slice.reference)
    assert result.code == 2
    assert result.err_lines == [f"sluice: error: contract file not found: {tmp_path / 'c.yaml'}"]


@pytest.mark.parametrize("kind", ["directory", "header-only"])
def test_the_same_unusable_file_is_exit_2_from_run_and_from_gate_data(sluice, tmp_path, demo_slice, kind):
    """Named for what it is, and the same verdict whichever verb meets it first."""
    if kind == "directory":
        bad, expected = tmp_path / "adir", "is a directory, not a file"
        bad.mkdir()
    else:
        bad, expected = tmp_path / "header.csv", "has a header but no rows"
        bad.write_bytes(demo_slice.current.read_bytes().split(b"\n", 1)[0] + b"\n")
    run = _run(sluice, tmp_path / "home", bad, demo_slice.contract, demo_slice.reference)
    gate = sluice(
        "gate", "data", "--contract", demo_slice.contract, "--reference", demo_slice.reference,
        "--current", bad, "--out", tmp_path / "gate" / "evidence.json",
    )
    for result in (run, gate):
        assert result.code == 2, result.err
        assert result.err_lines == [f"sluice: error: data file {bad} {expected}"]
    assert not (tmp_path / "gate").exists()
    as_reference = _run(sluice, tmp_path / "home", demo_slice.current, demo_slice.contract, bad)
    assert as_reference.code == 2 and expected in as_reference.err


def test_data_without_contract(sluice, tmp_path, demo_slice):
    result = sluice("run", "--home", tmp_path, "--data", demo_slice.current)
    assert result.code == 2
    assert result.err_lines == [
        "sluice: error: --data needs --contract (the data contract YAML describing its columns)"
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "is empty (0 bytes)"),
        (b"\xff\xfe\x00\x81garbage\x80\n\x00\x00", "is not UTF-8 text"),
        (None, "has a header but no rows"),
        (b'a,b\n1,2\n3,4,5,6\n"unterminated\n', "cannot parse CSV"),
    ],
    ids=["empty-file", "garbled-bytes", "header-only", "ragged-rows"],
)
def test_unreadable_data(sluice, tmp_path, demo_slice, content, expected):
    bad = tmp_path / "bad.csv"
    if content is None:
        content = demo_slice.current.read_bytes().split(b"\n", 1)[0] + b"\n"
    bad.write_bytes(content)
    result = _run(sluice, tmp_path / "home", bad, demo_slice.contract, demo_slice.reference)
    assert result.code == 2
    assert len(result.err_lines) == 1
    assert result.err_lines[0].startswith("sluice: error: ") and expected in result.err_lines[0]
    # Refused before any pipeline started: no run log (the background store set-up may have begun).
    assert list((tmp_path / "home").glob("logs/run-*.log")) == []
    assert list((tmp_path / "home").glob("runs/*")) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda t: t.replace("dtype: float", "dtype: text", 1), "does not match its schema"),
        (lambda t: t.replace("apiVersion: sluice.dev/v1", "apiVersion: sluice.dev/v9"), "apiVersion"),
        (lambda t: t.replace("columns:", "columns: [", 1), "is not valid YAML"),
        (lambda t: t.replace("label: default", "label: defaulted"), "label 'defaulted' is not one of"),
    ],
    ids=["unknown-dtype", "wrong-api-version", "broken-yaml", "label-not-a-column"],
)
def test_contract_that_does_not_match_its_schema(sluice, tmp_path, demo_slice, edit, expected):
    contract = tmp_path / "contract.yaml"
    contract.write_text(edit(demo_slice.contract.read_text()))
    result = _run(sluice, tmp_path / "home", demo_slice.current, contract, demo_slice.reference)
    assert result.code == 2
    assert len(result.err_lines) == 1 and expected in result.err_lines[0], result.err


# ------------------------------------------------------------------------- data gate failures (1)
def _rewrite(lines: list[str], column: str, fn) -> list[str]:
    header = lines[0].split(",")
    i = header.index(column)
    out = [lines[0]]
    for n, line in enumerate(lines[1:]):
        cells = line.split(",")
        cells[i] = fn(n, cells[i])
        out.append(",".join(cells))
    return out


def _drop_column(lines, column):
    i = lines[0].split(",").index(column)
    return [",".join(c for j, c in enumerate(line.split(",")) if j != i) for line in lines]


BROKEN = {
    "missing-column": (lambda ls: _drop_column(ls, "annual_income"), "annual_income"),
    "extra-column": (
        lambda ls: [ls[0] + ",favourite_colour"] + [line + ",blue" for line in ls[1:]],
        "favourite_colour",
    ),
    "wrong-dtype": (
        lambda ls: _rewrite(ls, "loan_amount", lambda n, v: "lots" if n % 7 == 0 else v),
        "loan_amount",
    ),
    "single-class-label": (lambda ls: _rewrite(ls, "default", lambda n, v: "0"), "class"),
    "nan-in-label": (lambda ls: _rewrite(ls, "default", lambda n, v: "" if n % 50 == 0 else v), "default"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(BROKEN))
def test_contract_violation_fails_the_data_gate(sluice, home, tmp_path, demo_slice, case):
    edit, named = BROKEN[case]
    lines = demo_slice.current.read_text().splitlines()
    bad = tmp_path / f"{case}.csv"
    bad.write_text("\n".join(edit(lines)) + "\n")
    result = _run(sluice, home, bad, demo_slice.contract, demo_slice.reference)
    assert result.code == 1, result.out + result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("sluice: data gate failed: ")
    assert named in result.err_lines[0]
    assert "; to proceed: " in result.err_lines[0]  # a refusal ends with how to get past it
    assert "train " not in result.out  # no candidate was trained
    assert sqlite_versions(home) == []
    last = json.loads((home / "runs" / "last-run.json").read_text())
    assert last["outcome"] == "gate-failed"
    evidence = json.loads(
        next((home / "evidence" / last["run_key"][:12]).rglob("data-evidence.json")).read_text()
    )
    assert evidence["passed"] is False
    assert evidence["subject"]["data_sha256"] == last["identity"]["data_sha256"]
    # The refused attempt is in MLflow too (nothing was trained to carry it), and in the history.
    listed = sluice("evidence", "list", "--model", "credit-default", "--home", home, "--format", "json")
    assert listed.code == 0, listed.err
    mine = [a for a in json.loads(listed.out) if a["sha256"] == last_attempt(home, last)]
    assert len(mine) == 1 and mine[0]["kind"] == "data" and mine[0]["verdict"] == "failed"
    assert mine[0]["failing"] and mine[0]["inputs"]["data_sha256"] == last["identity"]["data_sha256"]
    step = [line for line in result.out.splitlines() if "] data gate " in line]
    assert len(step) == 1 and " FAILED " in step[0] and "] record data gate " in result.out


def last_attempt(home, last: dict) -> str:
    """The evidence digest of the newest local data-gate attempt of the last run."""
    import hashlib

    found = sorted((home / "evidence" / last["run_key"][:12] / "data-gate").glob("*/data-evidence.json"))
    return hashlib.sha256(found[-1].read_bytes()).hexdigest()
