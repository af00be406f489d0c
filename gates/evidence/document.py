"""Building an evidence document: the envelope, the verdict, the decision and the one-line summary.

The verdict is derived from the checks in exactly one place (`finalize`), so a document can never
say "passed" while one of its blocking checks failed.
"""

from __future__ import annotations

from datetime import UTC, datetime

from gates.checks.result import failed_checks, gate_passed, jsonable

SCHEMA_VERSION = "sluice.dev/evidence/v1"
MAX_NAMED_FAILURES = 5


def new_evidence(
    kind: str, checks: list[dict], subject: dict, extra: dict | None = None, notes: list[str] | None = None
) -> dict:
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "passed": gate_passed(checks),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "subject": subject,
        "checks": checks,
        "summary": "",
        "notes": list(notes or []),
    }
    doc.update(extra or {})
    return doc


def finalize(evidence: dict) -> dict:
    """Recompute verdict, decision and summary from the checks; returns the same dict, JSON-clean."""
    checks = evidence["checks"]
    passed = gate_passed(checks)
    evidence["passed"] = passed
    failures = failed_checks(checks)
    advisory = [c for c in checks if not c["passed"] and not c["blocking"]]
    verdict = "PASSED" if passed else "FAILED"
    blocking_total = sum(1 for c in checks if c["blocking"])
    head = (
        f"{evidence['kind'].capitalize()} gate {verdict}: "
        f"{blocking_total - len(failures)}/{blocking_total} blocking checks passed"
    )
    if failures:
        named = ", ".join(c["name"] for c in failures[:MAX_NAMED_FAILURES])
        more = f" and {len(failures) - MAX_NAMED_FAILURES} more" if len(failures) > MAX_NAMED_FAILURES else ""
        head += f"; failed: {named}{more}"
    if evidence["kind"] == "data":
        drifted = evidence.get("drifted_features", [])
        evidence["drift_detected"] = bool(drifted)
        if not passed:
            evidence["decision"] = "blocked"
            tail = "data blocked, nothing may train on it"
        elif drifted:
            evidence["decision"] = "retrain"
            tail = f"drift in {len(drifted)} feature(s) ({', '.join(drifted[:MAX_NAMED_FAILURES])}): retrain"
        else:
            evidence["decision"] = "no-op"
            tail = "no drift: no-op run, nothing to retrain"
        evidence["summary"] = f"{head}; {tail}."
    else:
        evidence["decision"] = "accept" if passed else "reject"
        extra = f"; {len(advisory)} advisory finding(s)" if advisory else ""
        evidence["summary"] = f"{head}{extra}."
    for key, value in list(evidence.items()):
        evidence[key] = jsonable(value)
    return evidence
