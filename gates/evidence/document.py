"""Building an evidence document: the envelope, the verdict, the counts, the decision and the summary.

The verdict is derived from the checks in exactly one place (`finalize`, through
`gates.evidence.summary`), so a document can never say "passed" while one of its blocking checks
failed, nor count an advisory finding as a failure.

Schema versions: v2 (written now) adds `verdict`, `counts` and structured check fields (`column`,
`inconclusive`, `policy_key`); v1 documents (check names with the column packed in) are still
read and verified as they are.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gates.checks.result import jsonable
from gates.evidence.summary import summarize

SCHEMA_V1 = "sluice.dev/evidence/v1"
SCHEMA_VERSION = "sluice.dev/evidence/v2"


def new_evidence(
    kind: str, checks: list[dict], subject: dict, extra: dict | None = None, notes: list[str] | None = None
) -> dict:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "passed": False,
        "verdict": "",
        "counts": {},
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "subject": subject,
        "checks": checks,
        "summary": "",
        "notes": list(notes or []),
    }
    doc.update(extra or {})
    return finalize(doc)


def _decision(kind: str, passed: bool, drifted: bool) -> str:
    if kind != "data":
        return "accept" if passed else "reject"
    if not passed:
        return "blocked"
    return "retrain" if drifted else "no-op"


def finalize(evidence: dict) -> dict:
    """Recompute verdict, counts, decision and summary from the checks; returns the same dict, JSON-clean.

    For data evidence, `drifted_features` and `drift_detected` are the columns whose drift checks
    found something (advisory or blocking), in check order.
    """
    summary = summarize(evidence)
    evidence["passed"] = summary.passed
    evidence["verdict"] = summary.verdict
    evidence["counts"] = summary.counts
    if evidence["kind"] == "data":
        evidence["drifted_features"] = list(summary.drifted)
        evidence["drift_detected"] = bool(summary.drifted)
    evidence["decision"] = _decision(evidence["kind"], summary.passed, bool(summary.drifted))
    evidence["summary"] = summary.sentence()
    for key, value in list(evidence.items()):
        evidence[key] = jsonable(value)
    return evidence
