"""Evidence documents: schema-valid, digest = bytes on disk, readable renderings, nothing injectable."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from xml.etree import ElementTree

import pytest

from gates.evidence import (
    evidence_sha256,
    load_evidence,
    to_html,
    to_markdown,
    validate_evidence,
    write_evidence,
)
from sluice.errors import SluiceError
from tests.gates.conftest import make_frame


@pytest.fixture
def data_evidence(run_gate, reference_frame) -> dict:
    current = make_frame(300, 2, income_shift=150, score_nulls=0.0)
    current.loc[:4, "colour"] = "a | b <img src=x onerror=alert(1)>"
    return run_gate(reference_frame, current)


def test_written_evidence_validates_and_its_digest_is_the_file_bytes(data_evidence, tmp_path):
    path = write_evidence(data_evidence, tmp_path / "again", "ev")
    assert path.name == "ev.json"
    assert evidence_sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()
    assert load_evidence(path) == data_evidence
    assert sorted(p.name for p in path.parent.iterdir()) == ["ev.html", "ev.json", "ev.md"]


@pytest.mark.parametrize(
    "damage",
    [
        lambda e: e.pop("checks"),
        lambda e: e.update(kind="other"),
        lambda e: e["checks"][0].pop("reason"),
        lambda e: e["subject"].update(data_sha256="not-a-digest"),
        lambda e: e.pop("drift_detected"),
    ],
)
def test_invalid_documents_are_refused_on_write_and_on_load(data_evidence, tmp_path, damage):
    broken = copy.deepcopy(data_evidence)
    damage(broken)
    with pytest.raises(SluiceError, match="evidence schema"):
        write_evidence(broken, tmp_path / "w", "ev")
    assert not (tmp_path / "w" / "ev.json").exists()
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(SluiceError, match="evidence schema"):
        load_evidence(path)


def test_load_rejects_non_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("{nope")
    with pytest.raises(SluiceError, match="not valid JSON"):
        load_evidence(path)


def test_validate_refuses_a_document_whose_verdict_field_is_missing(data_evidence):
    broken = {k: v for k, v in data_evidence.items() if k != "passed"}
    with pytest.raises(SluiceError, match="passed"):
        validate_evidence(broken)


def test_markdown_is_a_readable_pr_body(data_evidence):
    text = to_markdown(data_evidence)
    assert text.startswith("## Data gate FAILED — gate-test")
    assert "### Blocking failures (1)" in text and "`contract.categories`" in text
    assert "### Advisory findings (3)" in text and "`drift.ks[income]`" in text
    assert data_evidence["subject"]["data_sha256"] in text
    table_rows = [ln for ln in text.splitlines() if ln.startswith("| `contract.categories`")]
    assert table_rows and all(ln.count(" | ") == 4 for ln in table_rows)  # pipes inside cells are escaped


def test_html_is_self_contained_with_plots_and_escapes_data(data_evidence):
    page = to_html(data_evidence)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<svg" in page and "income: reference vs current" in page
    assert "<img src=x" not in page and "&lt;img src=x" in page
    external = re.findall(r'(?:src|href)\s*=\s*["\']?(?:https?:)?//', page)
    assert external == []
    for svg in re.findall(r"<svg.*?</svg>", page, flags=re.S):
        ElementTree.fromstring(svg)  # noqa: S314 - our own output; every plot must be well-formed XML
