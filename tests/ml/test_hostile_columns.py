"""Any column name a contract allows is gated end to end and rendered safely.

The demo slice with its columns renamed the way real files name them (spaces, dots, unicode,
quotes, a backtick, a pipe, a bracket) and the way an attacker would (`<script>`, markup in the
label): `sluice gate data` and `sluice run` must judge it (exit 0 or 1, never 2), the evidence must
record each column exactly, and the HTML must not run anything (checked by parsing it, as a
browser would), nor the Markdown carry live markup or broken tables.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from gates.evidence import load_evidence
from sluice import cli
from tests.gates.report_parsing import Page, markdown_without_code, table_cells
from tests.ml.test_evidence_history import POLICY

RENAMED = {
    "annual_income": "annual income",
    "loan_amount": "loan.amount",
    "interest_rate": "rate \"quoted\" it's",
    "credit_utilization": "<script>alert(1)</script>",
    "age": "âge 年齢",
    "region": "région | area",
    "debt_to_income": "`debt` ratio",
    "num_open_accounts": "open accounts]",
    "default": "défaut <b>bold</b>",
    "sex": "sex/gender",
    "application_date": "applied at",
}
MODEL = "hostile-columns"


def _rename(src: Path, dst: Path, drift: bool = False) -> Path:
    frame = pd.read_csv(src, dtype=str, keep_default_na=False)
    if drift:  # two hostile columns drift, so their histograms are drawn
        frame["annual_income"] = (frame["annual_income"].astype(float) * 1.6).round(2).astype(str)
        shifted = (frame["credit_utilization"].astype(float) + 0.3).clip(upper=1.5)
        frame["credit_utilization"] = shifted.round(4).astype(str)
    frame.rename(columns=RENAMED).to_csv(dst, index=False)
    return dst


@pytest.fixture(scope="module")
def hostile(demo_slice, tmp_path_factory) -> dict[str, Path]:
    work = tmp_path_factory.mktemp("hostile")
    doc = yaml.safe_load(demo_slice.contract.read_text())
    for column in doc["columns"]:
        column["name"] = RENAMED.get(column["name"], column["name"])
    for role in ("label", "sensitive_attribute", "timestamp"):
        doc[role] = RENAMED[doc[role]]
    doc["name"] = MODEL
    contract = work / "contract.yaml"
    contract.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    policy = work / "policy.yaml"
    policy.write_text(yaml.safe_dump(POLICY, sort_keys=False))
    return {
        "work": work,
        "contract": contract,
        "policy": policy,
        "reference": _rename(demo_slice.reference, work / "reference.csv"),
        "current": _rename(demo_slice.current, work / "current.csv"),
        "drifted": _rename(demo_slice.current, work / "drifted.csv", drift=True),
    }


def _cli(*args) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main([str(a) for a in args])
    return code, out.getvalue(), err.getvalue()


def assert_renders_safely(json_path: Path) -> None:
    """The HTML runs nothing and shows the names as text; the Markdown has no live markup."""
    evidence = load_evidence(json_path)
    page = Page(json_path.with_suffix(".html").read_text())
    assert page.active_content() == [], page.active_content()
    assert set(page.tags) <= {
        "html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "table", "tr", "th", "td",
        "code", "span", "b", "ul", "li", "small", "div", "svg", "text", "rect", "line",
    }, set(page.tags)
    columns = {c["column"] for c in evidence["checks"] if c.get("column")}
    for name in columns & set(RENAMED.values()):
        assert name in page.all_text or json.dumps(name, ensure_ascii=False) in page.all_text, name
    md = json_path.with_suffix(".md").read_text()
    prose = markdown_without_code(md)
    for markup in ("<script", "<b>", "</b>"):
        assert markup not in prose
    width = None  # every row of a table has as many cells as its header: no pipe in a name splits one
    for line in md.splitlines():
        if not line.startswith("|"):
            width = None
        elif width is None:
            width = len(table_cells(line))
        else:
            assert len(table_cells(line)) == width, line


def test_gate_data_judges_hostile_names_and_records_them_exactly(hostile):
    base = ["gate", "data", "--contract", hostile["contract"], "--reference", hostile["reference"]]
    base += ["--policy", hostile["policy"]]
    code, out, err = _cli(*base, "--current", hostile["current"], "--out", hostile["work"] / "clean.json")
    assert code == 0, out + err
    clean = load_evidence(hostile["work"] / "clean.json")
    recorded = {c["column"] for c in clean["checks"] if c.get("column")}
    assert set(RENAMED.values()) <= recorded
    assert all("[" not in c["name"] and " " not in c["name"] for c in clean["checks"])

    code, out, err = _cli(*base, "--current", hostile["drifted"], "--out", hostile["work"] / "drift.json")
    assert code == 0, out + err
    drifted = load_evidence(hostile["work"] / "drift.json")
    assert {"annual income", "<script>alert(1)</script>"} <= set(drifted["drifted_features"])
    assert {h["feature"] for h in drifted["plots"]["histograms"]} >= {"<script>alert(1)</script>"}
    assert 'drift in "annual income" (' in drifted["summary"]
    assert 'drift.psi["<script>alert(1)</script>"]' in out
    assert_renders_safely(hostile["work"] / "drift.json")
    page = Page((hostile["work"] / "drift.html").read_text())
    assert "<script>alert(1)</script>: reference vs current" in page.text_of("title")  # the plot's title

    strict = hostile["work"] / "strict.yaml"
    strict.write_text(yaml.safe_dump({**POLICY, "data": {"volume": {"min_rows": 100_000}}}))
    code, out, err = _cli(
        "gate", "data", "--contract", hostile["contract"], "--reference", hostile["reference"],
        "--current", hostile["drifted"], "--policy", strict, "--out", hostile["work"] / "fail.json",
    )
    assert code == 1 and "data.volume.min_rows" in err.strip().splitlines()[-1], out + err
    assert_renders_safely(hostile["work"] / "fail.json")


@pytest.mark.slow
def test_sluice_run_trains_gates_and_registers_on_hostile_names(hostile):
    home = hostile["work"] / "home"
    code, out, err = _cli(
        "run", "--home", home, "--data", hostile["drifted"], "--contract", hostile["contract"],
        "--reference", hostile["reference"], "--policy", hostile["policy"], "--no-promote",
    )
    assert code in (0, 1), out + err  # judged, never an input error
    assert code == 0, out + err  # and with this policy the model passes its gate
    assert "registered model version hostile-columns 1" in out
    for path in sorted((home / "evidence").rglob("*-evidence.json")):
        assert_renders_safely(path)
    model_evidence = load_evidence(next((home / "evidence").rglob("model-evidence.json")))
    checks = model_evidence["checks"]
    fairness = next(c for c in checks if c["name"] == "fairness.equal_opportunity_difference")
    assert fairness["column"] == "sex/gender"
    code, listed, err = _cli("evidence", "list", "--model", MODEL, "--home", home, "--format", "json")
    assert code == 0, err
    verdicts = [(a["kind"], a["verdict"]) for a in json.loads(listed)]
    assert verdicts == [("data", "passed"), ("model", "passed")]
