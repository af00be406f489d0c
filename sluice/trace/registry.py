"""The MLflow side of a trace: the version the overlay names, and the evidence its gate wrote.

Everything is read through the readers promotion and `sluice evidence` use (tag names from
sluice.tags, attempts and digest-checked downloads from gates.evidence.history, the storage URI
rule and the evidence document check from sluice.promotion.evidence_check), so the trace agrees
with what promotion would have accepted, not with a second opinion of it.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sluice import tags
from sluice.errors import Refused, SluiceError
from sluice.promotion.evidence_check import check_document, mlflow_call, storage_uri
from sluice.promotion.overlay import OverlayState
from sluice.trace.hops import Hop, fail, ok, unreachable

UNREACHABLE_WORDS = ("cannot reach", "unreachable", "unhealthy")


def is_unreachable(exc: SluiceError) -> bool:
    return any(word in str(exc) for word in UNREACHABLE_WORDS)


def failed(name: str, exc: SluiceError) -> Hop:
    return unreachable(name, str(exc)) if is_unreachable(exc) else fail(name, str(exc))


def _stamp(millis: int | None) -> str | None:
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds") if millis else None


def _version_facts(mv: Any, run: Any | None, history: list[dict[str, str]]) -> dict[str, Any]:
    found = dict(mv.tags or {})
    facts: dict[str, Any] = {
        "run_id": mv.run_id,
        "run_key": tags.read_tag(found, tags.RUN_KEY),
        "registered": _stamp(mv.creation_timestamp),
        "aliases": sorted(mv.aliases or []),
        "identity": tags.read_identity(found),
        "lock_sha256": found.get(tags.LOCK_SHA256),
        "trainer_image": found.get(tags.TRAINER_IMAGE),
        "pipeline_run_id": found.get(tags.PIPELINE_RUN_ID),
        "production_commit": found.get(tags.PRODUCTION_COMMIT),
        "promotions": history,
    }
    if run is not None:
        facts["params"] = dict(run.data.params or {})
        facts["metrics"] = {k: round(v, 6) for k, v in sorted((run.data.metrics or {}).items())}
    return facts


def version_hop(
    client: Any,
    model: str,
    version: str,
    state: OverlayState | None,
    history: list[dict[str, str]],
    artifact_root: str,
) -> tuple[Hop, Any | None]:
    """Hop 2: the version exists, and what the overlay says about it is what MLflow records."""
    what = f"model {model} version {version}"
    try:
        mv = mlflow_call(what, client.get_model_version, model, version)
    except SluiceError as exc:
        if "not found" in str(exc):
            since = " (deleted since promotion?)" if state is not None else ""
            return fail("version", f"{what} is not in the MLflow registry{since}"), None
        return failed("version", exc), None
    run = None
    problems = []
    try:
        run = mlflow_call(f"run {mv.run_id}", client.get_run, mv.run_id) if mv.run_id else None
    except SluiceError as exc:
        problems.append(f"its run {mv.run_id} cannot be read ({exc})")
    facts = _version_facts(mv, run, history)
    if state is not None:
        try:
            raw = mlflow_call(f"{what} download URI", client.get_model_version_download_uri, model, version)
            served = storage_uri(raw, artifact_root, allow_local=True)
        except SluiceError as exc:
            return failed("version", exc), mv
        facts["storage_uri"] = served
        if state.model_uri != served:
            problems.append(f"overlay serves {state.model_uri} but the version's artifacts are {served}")
        recorded = tags.read_tag(mv.tags, tags.DATA_SHA256)
        if state.data_sha256 and state.data_sha256 != recorded:
            problems.append(f"overlay's data sha256 {state.data_sha256[:12]}… is not the tag's {recorded}")
    if problems:
        return fail("version", f"{what}: " + "; ".join(problems), **facts), mv
    aliases = ",".join(facts["aliases"]) or "no alias"
    return ok(
        "version",
        f"v{version} registered {facts['registered']}, run {mv.run_id[:12]}, {aliases}",
        **facts,
    ), mv


def _attempt_row(a: Any) -> dict[str, Any]:
    return {
        "attempt": a.attempt,
        "kind": a.kind,
        "verdict": a.verdict,
        "sha256": a.sha256,
        "created": a.created,
        "failing": a.failing,
        "legacy": a.legacy,
    }


def evidence_hop(
    client: Any, model: str, version: str, mv: Any, state: OverlayState | None
) -> tuple[Hop, list[Any]]:
    """Hop 3: the evidence the overlay cites, downloaded by digest, re-hashed, and every attempt."""
    from gates.checks.result import check_label
    from gates.evidence.history import fetch_evidence, list_attempts
    from gates.evidence.summary import summarize

    recorded = tags.read_tag(mv.tags, tags.EVIDENCE_SHA256)
    cited = (state.evidence_sha256 if state else None) or recorded
    if not cited:
        return fail("evidence", f"v{version} has no gate evidence ({tags.EVIDENCE_SHA256} missing)"), []
    try:
        attempts = list_attempts(client, model, version)
    except SluiceError as exc:
        return failed("evidence", exc), []
    facts: dict[str, Any] = {"sha256": cited, "attempts": [_attempt_row(a) for a in attempts]}
    if recorded != cited:
        return fail(
            "evidence",
            f"overlay cites evidence {cited[:12]}… but v{version}'s tag records {recorded}",
            **facts,
        ), attempts
    attempt = next((a for a in attempts if a.sha256 == cited), None)
    if attempt is None:
        return fail(
            "evidence", f"evidence {cited[:12]}… is not among the attempts of run {mv.run_id}", **facts
        ), attempts
    facts["artifact"] = attempt.artifact
    try:
        with tempfile.TemporaryDirectory(prefix="sluice-trace-") as tmp:
            evidence, data = fetch_evidence(client, attempt, Path(tmp))
    except Refused as exc:
        return fail("evidence", str(exc), **facts), attempts
    except SluiceError as exc:
        if is_unreachable(exc):
            return unreachable("evidence", str(exc), **facts), attempts
        return fail(
            "evidence", f"evidence {attempt.artifact} is missing or unreadable: {exc}", **facts
        ), attempts
    summary = summarize(evidence)
    facts.update(
        verdict=summary.verdict,
        counts=summary.counts_line(),
        failing=[check_label(c) for c in summary.failures + summary.inconclusive],
        advisory=[check_label(c) for c in summary.advisories],
    )
    try:
        check_document(f"v{version}", data, cited, model, version)
    except SluiceError as exc:
        return fail("evidence", str(exc), **facts), attempts
    counts = summary.counts
    return ok(
        "evidence",
        f"{cited[:12]}… re-hashed and matches; {summary.verdict} ({counts['blocking_passed']}/"
        f"{counts['blocking']} blocking, {counts['advisory_findings']} advisory); "
        f"{len(attempts)} gate attempt(s) on the run",
        **facts,
    ), attempts
