"""One summary, the same everywhere: the counts in the CLI, the Markdown, the HTML, the evidence JSON
and the `sluice run` progress line agree, and name blocking failures, inconclusive checks and
advisory findings as what they are.
"""

from __future__ import annotations

import copy
import io
import json
import re
from html import unescape
from pathlib import Path

import pytest

from gates.checks.result import make_check
from gates.evidence import load_evidence, new_evidence, summarize, validate_evidence
from ml.components.gating import verdict_fields
from ml.components.markers import MARKER
from ml.runners.progress import ProgressTap
from sluice.cli import main
from sluice.errors import SluiceError
from tests.gates.conftest import make_frame
from tests.gates.report_parsing import Page, table_cells

SCENARIOS = {
    # name: (current-frame builder, policy overrides, exit code, verdict, step status)
    "blocking-fail": (
        lambda: make_frame(300, 2, income_shift=150, score_nulls=0.0),
        {"data": {"volume": {"min_rows": 5000}, "labels": {"min_positive_rows": 100000}}},
        1,
        "failed",
        "FAILED",
    ),
    "advisory-only-drift": (
        lambda: make_frame(300, 2, income_shift=150, score_nulls=0.0),
        {},
        0,
        "passed",
        "advisory",
    ),
    "clean-pass": (lambda: make_frame(300, 2, score_nulls=0.0), {}, 0, "passed", "passed"),
}


def _gate(tmp_path: Path, contract_path: Path, policy: Path, current, capsys) -> tuple[int, str, str, Path]:
    ref, cur = tmp_path / "reference.csv", tmp_path / "current.csv"
    make_frame(400, 1, start="2024-01-01", score_nulls=0.0).to_csv(ref, index=False)
    current.to_csv(cur, index=False)
    out = tmp_path / "ev" / "data.json"
    args = ["gate", "data", "--contract", contract_path, "--reference", ref, "--current", cur]
    args += ["--policy", policy, "--as-of", "2024-03-01T00:00:00+00:00", "--out", out]
    capsys.readouterr()
    code = main([str(a) for a in args])
    printed = capsys.readouterr()
    return code, printed.out, printed.err, out


def _progress_line(evidence: dict, evidence_dir: Path) -> str:
    """The line `sluice run` prints for the data-gate task, from the marker the step emits."""
    marker = {"step": "data-gate", **verdict_fields(evidence, str(evidence_dir)), "train": True}
    out = io.StringIO()
    tap = ProgressTap(io.StringIO(), out)
    tap.write("INFO - Executing task 'data-gate'\n")
    tap.write(f"{MARKER} {json.dumps(marker)}\n")
    tap.write("INFO - Task 'data-gate' finished with status SUCCESS\n")
    return out.getvalue().strip()


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_counts_agree_in_cli_markdown_html_json_and_progress(
    scenario, tmp_path, contract_path, policy_file, capsys
):
    build, overrides, exit_code, verdict, status = SCENARIOS[scenario]
    code, out, err, path = _gate(tmp_path, contract_path, policy_file(overrides), build(), capsys)
    evidence = load_evidence(path)
    counts, summary = evidence["counts"], summarize(evidence)
    assert code == exit_code and evidence["verdict"] == verdict, out + err
    assert counts == summary.counts and evidence["summary"] == summary.sentence()
    parts = counts["blocking_passed"] + counts["blocking_failed"] + counts["inconclusive"]
    assert counts["blocking"] == parts
    if scenario == "blocking-fail":
        assert counts["blocking_failed"] >= 2 and counts["advisory_findings"] >= 2  # both kinds at once
    elif scenario == "advisory-only-drift":
        assert counts["blocking_failed"] == 0 and counts["advisory_findings"] >= 2
        assert "PASSED with advisories" in evidence["summary"]
        assert "drift in income (PSI" in evidence["summary"]
    else:
        assert counts["blocking_failed"] == counts["advisory_findings"] == 0

    # CLI: the stored sentence and counts, one line per finding of each kind, the refusal on stderr
    lines = out.splitlines()
    assert lines[0] == evidence["summary"] and lines[1] == summary.counts_line()
    assert sum(line.startswith("  FAIL ") for line in lines) == counts["blocking_failed"]
    assert sum(line.startswith("  advisory ") for line in lines) == counts["advisory_findings"]
    refusals = [line for line in err.splitlines() if line.startswith("sluice: refused: ")]
    assert len(refusals) == (1 if code else 0)
    if refusals:
        more = counts["blocking_failed"] - 1
        assert f"(+{more} more blocking failure" in refusals[0]
        assert f"{counts['advisory_findings']} advisory finding" in refusals[0]
        assert refusals[0].endswith("--policy FILE") or refusals[0].endswith("--contract")

    # Markdown: same sentence and counts line; section sizes and their table rows match the counts
    md = path.with_suffix(".md").read_text()
    assert f"> {evidence['summary']}" in unescape(md) and summary.counts_line() in md
    _assert_section(md, "### Blocking failures", counts["blocking_failed"])
    _assert_section(md, "### Advisory findings", counts["advisory_findings"])
    _assert_section(md, "### Inconclusive", counts["inconclusive"])

    # HTML: the banner is the sentence, the counts paragraph the counts line, headings carry the counts
    page = Page(path.with_suffix(".html").read_text())
    assert evidence["summary"] in page.text_of("p")
    assert summary.counts_line() in page.text_of("p")
    headings = page.text_of("h2")
    sections = (
        ("Blocking failures", counts["blocking_failed"]),
        ("Advisory findings", counts["advisory_findings"]),
    )
    for title, n in sections:
        matching = [h for h in headings if h.startswith(title)]
        assert matching == ([] if n == 0 else [matching[0]]) and (n == 0 or f"({n})" in matching[0])

    # `sluice run`'s progress line: the verdict in the status column, the same counts after it
    line = _progress_line(evidence, path.parent)
    assert re.match(rf"^\[ 1\] data gate\s+{re.escape(status)}\s", line), line
    assert f"{counts['blocking_passed']}/{counts['blocking']} blocking checks passed" in line
    if counts["blocking_failed"]:
        assert f", {counts['blocking_failed']} failed" in line
    if counts["advisory_findings"]:
        assert f"{counts['advisory_findings']} advisory finding" in line
    assert "no-op" not in line and "no-op" not in evidence["summary"]


def _assert_section(md: str, heading: str, count: int) -> None:
    starts = [i for i, line in enumerate(md.splitlines()) if line.startswith(heading)]
    if count == 0:
        assert starts == []
        return
    assert len(starts) == 1 and f"({count})" in md.splitlines()[starts[0]]
    rows = []
    for line in md.splitlines()[starts[0] + 4 :]:
        if not line.startswith("| "):
            break
        rows.append(line)
    assert len(rows) == count and all(len(table_cells(r)) == 5 for r in rows)


# ---- inconclusive checks ------------------------------------------------------------------


def _model_evidence(checks: list[dict]) -> dict:
    policy = {"sources": [{"path": "gates/gate_policy/default.yaml", "sha256": "ab" * 32}], "values": {}}
    subject = {"model": "m", "code_commit": "c" * 40}
    return new_evidence("model", checks, subject, {"policy": policy, "metrics": {}})


def test_an_inconclusive_check_blocks_and_is_counted_apart_from_failures():
    noisy = make_check(
        "latency.p99_ms", "latency", 180.0, 100, "<=", "host too noisy to time the server", inconclusive=True
    )
    assert noisy["passed"] is False and noisy["blocking"] is True
    quality = make_check("quality.f1", "quality", 0.8, 0.5, ">=", policy_key="model.quality.min_f1")
    drift = make_check("quality.accuracy", "quality", 0.6, 0.7, ">=", blocking=False)
    evidence = _model_evidence([quality, noisy, drift])
    validate_evidence(evidence)
    assert evidence["verdict"] == "inconclusive" and evidence["passed"] is False
    assert evidence["counts"] == {
        "checks": 3, "skipped": 0, "blocking": 2, "blocking_passed": 1, "blocking_failed": 0,
        "inconclusive": 1, "advisory_findings": 1,
    }
    summary = summarize(evidence)
    assert summary.status == "inconclusive" and summary.word == "INCONCLUSIVE"
    assert evidence["summary"].startswith(
        "Model gate INCONCLUSIVE: 1/2 blocking checks passed. 1 inconclusive:"
    )
    assert summary.refusal().startswith("model gate inconclusive: latency.p99_ms: host too noisy")
    assert "re-run on a quieter machine" in summary.refusal()
    # a real failure next to it makes the verdict "failed", and both are counted
    failing = make_check("quality.roc_auc", "quality", 0.5, 0.7, ">=")
    both = _model_evidence([quality, noisy, failing])
    assert both["verdict"] == "failed" and both["counts"]["inconclusive"] == 1
    assert both["counts"]["blocking_failed"] == 1


@pytest.mark.parametrize(
    "edit",
    [
        lambda e: e.update(passed=True),
        lambda e: e.update(verdict="passed"),
        lambda e: e["counts"].update(advisory_findings=0),
        lambda e: e["checks"][1].update(inconclusive=False),
    ],
    ids=["passed", "verdict", "counts", "check-flag"],
)
def test_a_verdict_that_does_not_add_up_is_refused(edit):
    noisy = make_check("latency.p99_ms", "latency", 1.0, 1, "<=", "noisy", inconclusive=True)
    advisory = make_check("quality.accuracy", "quality", 0.6, 0.7, ">=", blocking=False)
    passing = make_check("quality.f1", "quality", 1, 0, ">=")
    evidence = copy.deepcopy(_model_evidence([passing, noisy, advisory]))
    edit(evidence)
    with pytest.raises(SluiceError, match=r"does not add up|evidence schema"):
        validate_evidence(evidence)


def test_check_names_never_carry_a_column():
    with pytest.raises(ValueError, match="put a column in `column`"):
        make_check("nulls.mean radius", "nulls", 0, 0, "<=")
    record = make_check("nulls", "nulls", 0.0, 0.0, "<=", column="mean radius")
    assert record["name"] == "nulls" and record["column"] == "mean radius"
