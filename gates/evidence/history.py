"""Every gate attempt kept: where its evidence lives in MLflow, and a model's history of attempts.

Append-only by construction. An attempt's identity comes from its evidence document,
`<created, UTC, to the second>Z-<first 12 hex of the document's sha256>` (sortable by time, and
two different documents never share it), and its files go under the run's `evidence/<attempt>/`,
so a re-run never replaces an earlier attempt, passing or failing. Each attempt also leaves an
index entry on its run, tag `sluice.attempt.<attempt>` (JSON: kind, verdict, digest, time,
inputs, counts, failing checks), so a model's whole history is one run search, not a download
per attempt. The documents themselves stay the record: `fetch_evidence` re-checks a document's
sha256 before anyone reads it.

Evidence from before attempts existed (`evidence/model-evidence.json`, tags only) is listed too,
marked legacy, from the tags of its run and versions.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from gates.checks.result import check_label
from gates.evidence.io import evidence_sha256, load_evidence
from gates.evidence.summary import summarize
from ml.registry.client import one_line
from sluice import tags
from sluice.errors import Refused, SluiceError

EVIDENCE_DIR = "evidence"
LEGACY_ARTIFACT = "evidence/model-evidence.json"  # where evidence lay before attempts had folders
RENDERINGS = (".json", ".md", ".html")
MAX_LABELS = 10
TAG_VALUE_LIMIT = 8000  # MLflow's limit on a tag value
INPUT_FIELDS = (
    "model", "version", "model_uri", "data_sha256", "reference_sha256", "contract_sha256",
    "holdout_sha256", "code_commit",
)
_HEX = re.compile(r"^[0-9a-f]{6,64}$")


def attempt_id(evidence: dict, digest: str) -> str:
    """`20240301T120000Z-1a2b3c4d5e6f`: when the gate ran (UTC) and which document it wrote."""
    digits = re.sub(r"\D", "", str(evidence.get("created", "")))[:14].ljust(14, "0")
    return f"{digits[:8]}T{digits[8:]}Z-{digest[:12]}"


@dataclass
class Attempt:
    """One gate attempt as the history shows it."""

    attempt: str  # "" for legacy evidence (no attempt folder)
    kind: str
    verdict: str
    sha256: str
    created: str
    artifact: str  # the evidence JSON's path inside its run's artifacts
    run_id: str = ""
    counts: dict = field(default_factory=dict)
    failing: list[str] = field(default_factory=list)  # blocking failures, then inconclusive checks
    advisory: list[str] = field(default_factory=list)
    reason: str = ""
    inputs: dict = field(default_factory=dict)
    policy_sha256: list[str] = field(default_factory=list)
    pipeline_run_id: str = ""
    versions: list[str] = field(default_factory=list)  # versions whose evidence tags cite this digest
    legacy: bool = False

    def entry(self) -> str:
        """The run tag's JSON: everything but where it is stored and who cites it (under 8000 chars)."""
        body = {k: v for k, v in asdict(self).items() if k not in ("attempt", "run_id", "versions", "legacy")}
        text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        while len(text) > TAG_VALUE_LIMIT and (body["failing"] or body["advisory"] or body["reason"]):
            for key in ("advisory", "failing"):
                if body[key]:
                    body[key] = body[key][:-1]
                    break
            else:
                body["reason"] = body["reason"][: len(body["reason"]) // 2]
            text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return text

    @classmethod
    def from_entry(cls, attempt: str, run_id: str, value: str) -> Attempt | None:
        try:
            body = json.loads(value)
            return cls(attempt=attempt, run_id=run_id, **body)
        except (ValueError, TypeError):
            return None  # not an entry this version of Sluice wrote: left out, never guessed at

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _labels(checks: tuple[dict, ...]) -> list[str]:
    names = [check_label(c)[:200] for c in checks]
    return names[:MAX_LABELS] + ([f"and {len(names) - MAX_LABELS} more"] if len(names) > MAX_LABELS else [])


def describe_attempt(json_path: Path, pipeline_run_id: str = "") -> Attempt:
    """The attempt a written evidence document records (validated, digest from its bytes)."""
    doc = load_evidence(json_path)
    digest = evidence_sha256(json_path)
    summary = summarize(doc)
    attempt = attempt_id(doc, digest)
    subject = doc.get("subject") or {}
    return Attempt(
        attempt=attempt,
        kind=doc["kind"],
        verdict=summary.verdict,
        sha256=digest,
        created=doc["created"],
        artifact=f"{EVIDENCE_DIR}/{attempt}/{json_path.name}",
        counts=summary.counts,
        failing=_labels(summary.failures + summary.inconclusive),
        advisory=_labels(summary.advisories),
        reason="" if summary.passed else summary.reason()[:500],
        inputs={k: str(subject[k]) for k in INPUT_FIELDS if subject.get(k)},
        policy_sha256=[s["sha256"] for s in doc["policy"]["sources"]],
        pipeline_run_id=pipeline_run_id,
    )


def renderings(json_path: Path) -> list[Path]:
    """The evidence JSON and the Markdown/HTML written beside it (same stem), nothing else."""
    return [p for p in (json_path.with_suffix(ext) for ext in RENDERINGS) if p.is_file()]


def record_attempt(client: Any, run_id: str, json_path: Path, *, pipeline_run_id: str = "") -> Attempt:
    """Log one attempt's files under `evidence/<attempt>/` of the run and index it on the run."""
    attempt = describe_attempt(json_path, pipeline_run_id)
    attempt.run_id = run_id
    for path in renderings(json_path):
        client.log_artifact(run_id, str(path), artifact_path=f"{EVIDENCE_DIR}/{attempt.attempt}")
    client.set_tag(run_id, tags.attempt_tag(attempt.attempt), attempt.entry())
    return attempt


def verdict_tags(attempt: Attempt) -> dict[str, str]:
    """What a version's (or a run's) EVIDENCE_* tags say about the attempt they describe."""
    return {
        tags.EVIDENCE_SHA256: attempt.sha256,
        tags.EVIDENCE_PASSED: "true" if attempt.verdict == "passed" else "false",
        tags.EVIDENCE_ARTIFACT: attempt.artifact,
        tags.EVIDENCE_ATTEMPT: attempt.attempt,
    }


def tag_run_verdict(client: Any, run_id: str, attempt: Attempt) -> None:
    """Point the run's EVIDENCE_* tags at its latest model-gate attempt, leaving nothing contradictory.

    A reason is set only while the latest attempt failed: a pass removes an earlier failure's
    reason (that failure stays readable in its own attempt).
    """
    from mlflow.entities import RunTag

    values = verdict_tags(attempt)
    if attempt.verdict != "passed":
        values[tags.EVIDENCE_REASON] = attempt.reason or attempt.verdict
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in values.items()])  # one call, not five
    if attempt.verdict == "passed" and tags.EVIDENCE_REASON in (client.get_run(run_id).data.tags or {}):
        client.delete_tag(run_id, tags.EVIDENCE_REASON)


def _stamp(millis: int | None) -> str:
    if not millis:
        return ""
    return datetime.fromtimestamp(millis / 1000, UTC).isoformat(timespec="seconds")


def attempts_of_run(run: Any) -> list[Attempt]:
    """The attempts indexed on a run; legacy evidence (run tags only) when it has none."""
    run_tags = run.data.tags or {}
    found = []
    for key, value in run_tags.items():
        if key.startswith(tags.ATTEMPT_PREFIX):
            attempt = Attempt.from_entry(key.removeprefix(tags.ATTEMPT_PREFIX), run.info.run_id, value)
            if attempt is not None:
                found.append(attempt)
    digest = run_tags.get(tags.EVIDENCE_SHA256)
    if digest and digest not in {a.sha256 for a in found}:
        found.append(_legacy(run.info.run_id, run_tags, _stamp(run.info.start_time)))
    return found


def _legacy(run_id: str, source_tags: dict, created: str) -> Attempt:
    passed = (source_tags.get(tags.EVIDENCE_PASSED) or "").strip().lower() == "true"
    return Attempt(
        attempt="",
        kind="model",
        verdict="passed" if passed else "failed",
        sha256=source_tags[tags.EVIDENCE_SHA256],
        created=created,
        artifact=source_tags.get(tags.EVIDENCE_ARTIFACT) or LEGACY_ARTIFACT,
        run_id=run_id,
        reason=source_tags.get(tags.EVIDENCE_REASON) or "",
        legacy=True,
    )


def _call(what: str, fn, *args, **kwargs):
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args, **kwargs)
    except MlflowException as exc:
        raise SluiceError(f"{what}: {one_line(exc)}") from exc
    except OSError as exc:  # requests' connection errors subclass OSError
        raise SluiceError(f"{what}: cannot reach the MLflow tracking server ({type(exc).__name__})") from exc


def _all_runs(client: Any, experiment_ids: list[str]) -> list:
    runs, token = [], None
    while experiment_ids:
        page = _call("run search", client.search_runs, experiment_ids, max_results=1000, page_token=token)
        runs += list(page)
        token = getattr(page, "token", None)
        if not token:
            break
    return runs


def _versions(client: Any, model: str) -> list:
    query = "name = '{}'".format(model.replace("'", "\\'"))
    return list(_call(f"versions of {model}", client.search_model_versions, query))


def _runs_of(client: Any, model: str, versions: list) -> list:
    """Runs of the model's experiment, plus the runs of its versions logged elsewhere."""
    experiment = _call(f"experiment {model}", client.get_experiment_by_name, model)
    runs = _all_runs(client, [experiment.experiment_id] if experiment else [])
    known = {r.info.run_id for r in runs}
    extra = {mv.run_id for mv in versions if mv.run_id and mv.run_id not in known}
    return runs + [_call("run", client.get_run, run_id) for run_id in sorted(extra)]


def list_attempts(client: Any, model: str, version: str | None = None) -> list[Attempt]:
    """Every gate attempt recorded for `model` (only those on `version`'s run when given), oldest first."""
    versions = _versions(client, model)
    chosen = versions
    if version is not None:
        chosen = [mv for mv in versions if str(mv.version) == str(version)]
        if not chosen:
            raise SluiceError(f"model {model} has no version {version} in the MLflow registry")
        run_id = chosen[0].run_id
        runs = [_call(f"run of version {version}", client.get_run, run_id)] if run_id else []
    else:
        runs = _runs_of(client, model, versions)
    if not runs and not chosen:
        raise SluiceError(f"no gate attempts recorded for model {model} (no experiment or version of it)")
    attempts = {a.sha256: a for run in runs for a in attempts_of_run(run)}
    for mv in chosen:  # versions tagged by an older `sluice gate model`, evidence on the version only
        digest = (mv.tags or {}).get(tags.EVIDENCE_SHA256)
        if digest and digest not in attempts:
            attempts[digest] = _legacy(mv.run_id or "", mv.tags, _stamp(mv.creation_timestamp))
    for mv in versions:
        digest = (mv.tags or {}).get(tags.EVIDENCE_SHA256)
        if digest in attempts:
            attempts[digest].versions.append(str(mv.version))
    return sorted(attempts.values(), key=lambda a: (a.created, a.attempt))


def _everywhere(client: Any) -> list[Attempt]:
    """Every attempt in every experiment, and legacy evidence tagged on any version."""
    experiments = _call("experiment search", client.search_experiments)
    runs = _all_runs(client, [e.experiment_id for e in experiments])
    found = {a.sha256: a for run in runs for a in attempts_of_run(run)}
    for mv in _call("version search", client.search_model_versions):
        digest = (mv.tags or {}).get(tags.EVIDENCE_SHA256)
        if digest and digest not in found:
            found[digest] = _legacy(mv.run_id or "", mv.tags, _stamp(mv.creation_timestamp))
            found[digest].inputs["model"] = mv.name
    return list(found.values())


def find_attempt(client: Any, digest: str, model: str | None = None) -> Attempt:
    """The attempt whose evidence digest starts with `digest` (at least 6 hex digits)."""
    prefix = digest.strip().lower().removeprefix("sha256:")
    if not _HEX.match(prefix):
        raise SluiceError(f"evidence digest {digest!r} is not 6 to 64 hex digits")
    candidates = list_attempts(client, model) if model is not None else _everywhere(client)
    matches = {a.sha256: a for a in candidates if a.sha256.startswith(prefix)}
    if not matches:
        where = f"model {model}" if model else "any experiment"
        raise SluiceError(
            f"no gate attempt with evidence digest {prefix} in {where} (see sluice evidence list)"
        )
    if len(matches) > 1:
        raise SluiceError(
            f"evidence digest {prefix} is ambiguous ({len(matches)} attempts): give more digits"
        )
    found = next(iter(matches.values()))
    owner = model or found.inputs.get("model")
    if model is None and owner:  # which versions cite it: their tags live in the registry
        for mv in _versions(client, owner):
            if (mv.tags or {}).get(tags.EVIDENCE_SHA256) == found.sha256:
                found.versions.append(str(mv.version))
    return found


def fetch_evidence(client: Any, attempt: Attempt, dst: Path) -> tuple[dict, bytes]:
    """Download an attempt's evidence JSON and verify it is the document its digest names."""
    if not attempt.run_id:
        raise SluiceError(f"evidence {attempt.sha256[:12]} has no run to download it from")
    local = Path(
        _call("evidence download", client.download_artifacts, attempt.run_id, attempt.artifact, str(dst))
    )
    data = local.read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if actual != attempt.sha256:
        raise Refused(
            f"evidence {attempt.artifact} of run {attempt.run_id} has sha256 {actual[:12]}…, "
            f"not the recorded {attempt.sha256[:12]}… (changed after the gate ran); "
            "it cannot be trusted: run the gate again for evidence that can"
        )
    return load_evidence(local), data
