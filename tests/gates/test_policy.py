"""Gate policy: defaults load, overrides merge, and a bad policy is a one-line input error."""

from __future__ import annotations

import pytest

from gates.checks.result import make_check
from gates.gate_policy import load_policy
from sluice.errors import SluiceError
from tests.gates.conftest import write_yaml


def test_defaults_state_every_threshold():
    policy = load_policy()
    assert policy["data"]["drift"]["max_psi"] == 0.2
    assert policy["model"]["regression"]["min_f1_ratio"] == 0.95
    assert policy["model"]["latency"]["max_p99_ms"] == 100
    assert policy["model"]["fairness"]["max_equal_opportunity_difference"] == 0.05
    assert policy["sources"][0]["path"] == "gates/gate_policy/default.yaml"
    assert len(policy["sources"][0]["sha256"]) == 64


def test_override_changes_only_what_it_names(tmp_path):
    path = write_yaml(
        tmp_path / "p.yaml",
        {"apiVersion": "sluice.dev/v1", "kind": "GatePolicy", "data": {"drift": {"max_psi": 0.1}}},
    )
    policy = load_policy(path)
    assert policy["data"]["drift"]["max_psi"] == 0.1
    assert policy["data"]["drift"]["max_ks_statistic"] == load_policy()["data"]["drift"]["max_ks_statistic"]
    assert [s["path"] for s in policy["sources"]] == ["gates/gate_policy/default.yaml", str(path)]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        (
            {"apiVersion": "sluice.dev/v1", "kind": "GatePolicy", "data": {"drift": {"max_psii": 1}}},
            "max_psii",
        ),
        (
            {"apiVersion": "sluice.dev/v1", "kind": "GatePolicy", "data": {"drift": {"max_psi": -1}}},
            "data/drift/max_psi",
        ),
        ({"apiVersion": "sluice.dev/v1", "kind": "Nope"}, "kind"),
        (["not", "a", "mapping"], "mapping"),
    ],
)
def test_invalid_policies_are_rejected_with_the_place(tmp_path, doc, message):
    path = write_yaml(tmp_path / "bad.yaml", doc)
    with pytest.raises(SluiceError, match=message):
        load_policy(path)


def test_broken_yaml_and_missing_file(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("data: {drift: [\n")
    with pytest.raises(SluiceError, match="not valid YAML"):
        load_policy(broken)
    with pytest.raises(SluiceError, match="policy not found"):
        load_policy(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("observed", "comparator", "threshold", "passed"),
    [
        (0.2, "<=", 0.2, True),
        (0.2000001, "<=", 0.2, False),
        (0.95, ">=", 0.95, True),
        (0.9499999, ">=", 0.95, False),
        (None, "<=", 1.0, False),
        (float("nan"), ">=", 0.0, False),
        (float("inf"), "<=", 2.0, False),
    ],
)
def test_threshold_equality_passes_and_unmeasured_values_fail(observed, comparator, threshold, passed):
    result = make_check("x.y", "drift", observed, threshold, comparator)
    assert result["passed"] is passed
    assert result["reason"]


def test_skipped_checks_pass_and_say_why():
    result = make_check("freshness", "freshness", None, None, "<=", skipped=True)
    assert result["passed"] and result["skipped"] and result["reason"] == "not applicable"
