"""Is this model version allowed to move? Read its registry record and verify its gate evidence.

The registry's tags say what the gate concluded, but tags are editable metadata: promotion trusts
the evidence file only when the sha256 of the downloaded bytes equals the digest the gate recorded
(tag `tags.EVIDENCE_SHA256`), and the document itself says `passed: true` for this model.

Which file: the one the version's `tags.EVIDENCE_ARTIFACT` names (`evidence/<attempt>/...json`
since every gate attempt has its own folder); versions tagged before that have no such tag or
name `evidence/model-evidence.json`, and are verified there, by digest, as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sluice import tags
from sluice.errors import Refused, SluiceError

EVIDENCE_DIR = "evidence"
EVIDENCE_FILE = "evidence/model-evidence.json"  # the one evidence file of versions gated before attempts
DEFAULT_ARTIFACT_ROOT = "s3://mlflow-artifacts"  # the bucket apps/mlflow's server writes to
REMOTE_SCHEMES = ("s3", "gs", "gcs", "hdfs", "webhdfs", "https", "http", "pvc", "oci", "abfs", "abfss", "hf")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Candidate:
    model: str
    version: str
    run_id: str
    experiment_id: str
    model_uri: str  # immutable artifact location a cluster can fetch
    evidence: dict[str, Any]
    evidence_sha256: str
    evidence_path: Path  # local copy of the verified JSON
    report_path: Path  # local copy of the human report (HTML when the gate wrote one)
    report_artifact: str  # its path inside the run's artifacts
    data_sha256: str | None
    tags: dict[str, str]


def client_for(tracking_uri: str):  # -> mlflow.MlflowClient (import kept lazy: mlflow is heavy)
    # Fail in seconds, not minutes, when the server is down (MLflow retries 7 times by default).
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def mlflow_call(what: str, fn, *args, **kwargs):
    from mlflow.exceptions import MlflowException

    try:
        return fn(*args, **kwargs)
    except MlflowException as exc:
        if getattr(exc, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
            raise SluiceError(f"{what}: not found in the MLflow registry") from exc
        text = str(exc).strip()
        if any(s in text for s in ("Max retries exceeded", "Failed to establish", "Connection refused")):
            raise SluiceError(f"{what}: cannot reach the MLflow tracking server (connection failed)") from exc
        first = text.splitlines()[0][:300] if text else type(exc).__name__
        raise SluiceError(f"{what}: MLflow error: {first}") from exc
    except OSError as exc:  # connection refused, DNS, timeouts (requests' errors subclass OSError)
        raise SluiceError(
            f"{what}: cannot reach the MLflow tracking server ({exc.__class__.__name__})"
        ) from exc


def storage_uri(raw: str, artifact_root: str = DEFAULT_ARTIFACT_ROOT, allow_local: bool = False) -> str:
    """Where a cluster fetches the version's artifacts from.

    `mlflow-artifacts:/<path>` is the tracking server's proxied store; it is served from
    `artifact_root` (the server's --artifacts-destination), so the direct URI is that root plus
    the path. A local path only makes sense on this machine (the laptop loop).
    """
    parsed = urllib.parse.urlparse(raw)
    if parsed.scheme == "mlflow-artifacts":
        return artifact_root.rstrip("/") + "/" + parsed.path.lstrip("/")
    if parsed.scheme in REMOTE_SCHEMES:
        return raw
    if parsed.scheme in ("", "file"):
        if allow_local:
            return raw if parsed.scheme else Path(raw).resolve().as_uri()
        raise SluiceError(
            f"model artifacts are at {raw}, local to this machine: a cluster cannot fetch them "
            "(track with an MLflow server whose artifact store is object storage)"
        )
    raise SluiceError(f"model artifacts at {raw}: unsupported URI scheme {parsed.scheme!r} for KServe")


def _recorded_digest(what: str, found: dict[str, str], run_id: str | None) -> str:
    """The digest a passing gate recorded on the version, or why there is none to trust."""
    passed, digest_tag = tags.EVIDENCE_PASSED, tags.EVIDENCE_SHA256
    if passed not in found:
        raise Refused(f"{what} has no gate evidence (tag {passed} missing): run the model gate first")
    if found[passed].strip().lower() != "true":
        raise Refused(f"{what} failed its gate ({passed}={found[passed]}): refusing to promote")
    recorded = (found.get(digest_tag) or "").strip().lower()
    if not _HEX64.match(recorded):
        raise Refused(f"{what} has no valid evidence digest (tag {digest_tag} missing or malformed)")
    if not run_id:
        raise Refused(f"{what} has no run: its evidence artifacts cannot be found")
    return recorded


def check_document(what: str, data: bytes, recorded: str, model: str, version: str) -> dict:
    """The evidence bytes must be the recorded digest's, say passed, and be about this version."""
    actual = hashlib.sha256(data).hexdigest()
    if actual != recorded:
        raise Refused(
            f"{what}: evidence file sha256 {actual[:12]}… does not match the recorded {tags.EVIDENCE_SHA256} "
            f"{recorded[:12]}… (evidence changed after the gate ran)"
        )
    try:
        evidence = json.loads(data)
    except ValueError as exc:
        raise Refused(f"{what}: evidence file is not valid JSON") from exc
    if not isinstance(evidence, dict) or evidence.get("passed") is not True:
        raise Refused(f"{what}: evidence document does not say passed: true")
    if evidence.get("kind") not in (None, "model"):
        raise Refused(f"{what}: evidence is of kind {evidence.get('kind')!r}, expected model evidence")
    subject = evidence.get("subject") or {}
    if subject.get("model") not in (None, model):
        raise Refused(f"{what}: evidence is about model {subject.get('model')!r}")
    if subject.get("version") not in (None, "", version, int(version)):
        raise Refused(f"{what}: evidence is about version {subject.get('version')!r}")
    return evidence


def _download(client, run_id: str, artifact: str, target: Path, what: str) -> Path:
    """Download into a private directory, then move the file into `target` in one rename: two
    promotions of the same version share `target`, and neither may read the other's half-written file."""
    private = Path(tempfile.mkdtemp(prefix=".download-", dir=target))
    try:
        got = Path(mlflow_call(what, client.download_artifacts, run_id, artifact, str(private)))
        final = target / got.relative_to(private)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, final)
        return final
    finally:
        shutil.rmtree(private, ignore_errors=True)


def load_candidate(
    client,
    model: str,
    version: str,
    download_dir: Path,
    artifact_root: str = DEFAULT_ARTIFACT_ROOT,
    allow_local_uri: bool = False,
) -> Candidate:
    """The version's immutable URI and verified passing evidence. Refused (exit 1) when the
    evidence says no or cannot be trusted; SluiceError (exit 2) when MLflow cannot tell."""
    what = f"model {model} version {version}"
    mlflow_call(f"registered model {model}", client.get_registered_model, model)
    mv = mlflow_call(what, client.get_model_version, model, version)
    found = dict(mv.tags or {})
    recorded = _recorded_digest(what, found, mv.run_id)
    artifact = evidence_artifact(what, found)
    files = mlflow_call(
        f"artifacts of run {mv.run_id}", client.list_artifacts, mv.run_id, artifact.rsplit("/", 1)[0]
    )
    names = {f.path for f in files if not f.is_dir}
    if artifact not in names:
        raise Refused(f"{what}: evidence artifact {artifact} missing from run {mv.run_id}")
    target = download_dir / f"{model}-v{version}"
    target.mkdir(parents=True, exist_ok=True)
    local = _download(client, mv.run_id, artifact, target, "evidence download")
    evidence = check_document(what, local.read_bytes(), recorded, model, version)
    beside = artifact.removesuffix(".json") + ".html"
    html = [beside] if beside in names else sorted(n for n in names if n.endswith(".html"))
    report_artifact, report_path = artifact, local
    if html:
        report_artifact = html[0]
        report_path = _download(client, mv.run_id, html[0], target, "report download")
    run = mlflow_call(f"run {mv.run_id}", client.get_run, mv.run_id)
    raw = mlflow_call(f"{what} download URI", client.get_model_version_download_uri, model, version)
    return Candidate(
        model=model,
        version=str(version),
        run_id=mv.run_id,
        experiment_id=str(run.info.experiment_id),
        model_uri=storage_uri(raw, artifact_root, allow_local_uri),
        evidence=evidence,
        evidence_sha256=recorded,
        evidence_path=local,
        report_path=report_path,
        report_artifact=report_artifact,
        data_sha256=found.get(tags.DATA_SHA256),
        tags=found,
    )


def evidence_artifact(what: str, version_tags: dict[str, str]) -> str:
    """The evidence JSON a version cites, inside its run's `evidence/` folder (never outside it)."""
    artifact = (version_tags.get(tags.EVIDENCE_ARTIFACT) or EVIDENCE_FILE).strip()
    parts = artifact.split("/")
    if parts[0] != EVIDENCE_DIR or not artifact.endswith(".json") or {"", ".", ".."} & set(parts):
        raise Refused(
            f"{what}: tag {tags.EVIDENCE_ARTIFACT}={artifact!r} is not an evidence/….json path"
        )
    return artifact


def ui_links(ui_url: str | None, candidate: Candidate) -> tuple[str | None, str | None]:
    """Links for Argo CD's dashboard: the version's page and the run's evidence artifact."""
    if not ui_url or not ui_url.startswith(("http://", "https://")):
        return None, None
    base = ui_url.rstrip("/")
    model = urllib.parse.quote(candidate.model, safe="")
    version_url = f"{base}/#/models/{model}/versions/{candidate.version}"
    evidence_url = (
        f"{base}/#/experiments/{candidate.experiment_id}/runs/{candidate.run_id}"
        f"/artifacts/{candidate.report_artifact}"
    )
    return version_url, evidence_url
