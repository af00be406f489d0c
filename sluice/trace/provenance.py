"""Where a version came from, checked against what is here: its code commit and its data snapshot.

The code hop asks this repository (the checkout at the ref, and the local clone it borrows from)
for the commit the version's tags record, compares the compiled pipeline IR at that commit with
the one this installation ships, and re-hashes the dependency lock at that commit against the
recorded `sluice.lock_sha256`. The data hop re-hashes the snapshot the run's data gate read (its
path comes from that gate's evidence, fetched by digest) against the recorded data sha256.
"""

from __future__ import annotations

import hashlib
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from sluice import tags
from sluice.digest import sha256_file
from sluice.environment import LOCK_FILE_NAME
from sluice.errors import SluiceError
from sluice.git import blob
from sluice.promotion.gitops import Checkout
from sluice.trace.gitref import holding
from sluice.trace.hops import Hop, fail, ok, skip, unreachable
from sluice.trace.registry import is_unreachable

PIPELINE_IR = "ml/pipelines/training.yaml"
DIRTY = "+dirty"


def shipped_ir() -> Path:
    """The compiled pipeline IR of this installation (beside the `sluice` package, in `ml/`)."""
    return Path(__file__).resolve().parents[2] / PIPELINE_IR


def _blob_sha256(repo: Path, commit: str, path: str) -> str | None:
    data = blob(repo, commit, path)
    return hashlib.sha256(data).hexdigest() if data is not None else None


def code_hop(co: Checkout, repos: list[Path], version_tags: dict[str, str]) -> Hop:
    """Hop 4: the recorded code commit is in this repository (or `repos`); its pipeline IR and lock."""
    recorded = tags.read_tag(version_tags, tags.CODE_COMMIT)
    if not recorded or recorded == "unknown":
        return skip("code", "the version records no code commit")
    commit = recorded.removesuffix(DIRTY)
    dirty = recorded.endswith(DIRTY)
    facts: dict[str, Any] = {"commit": recorded, "dirty": dirty}
    repo = holding(commit, co.path, *repos)
    if repo is None:
        return fail(
            "code",
            f"code commit {commit[:12]} is not in this repository (fetch it, or it was rewritten away)",
            **facts,
        )
    notes = []
    at_commit = _blob_sha256(repo, commit, PIPELINE_IR)
    here = shipped_ir()
    if at_commit is None:
        notes.append(f"no {PIPELINE_IR} at that commit")
    elif here.is_file():
        same = at_commit == sha256_file(here)
        facts["pipeline_ir_matches"] = same
        notes.append(
            "pipeline IR same as this installation's"
            if same
            else "pipeline IR differs from this installation's (the pipeline changed since)"
        )
    lock = version_tags.get(tags.LOCK_SHA256)
    if lock:
        at_lock = _blob_sha256(repo, commit, LOCK_FILE_NAME)
        facts["lock_matches"] = at_lock == lock
        if at_lock != lock:
            return fail(
                "code",
                f"{tags.LOCK_SHA256} {lock[:12]}… is not the sha256 of {LOCK_FILE_NAME} at "
                f"{commit[:12]} ({(at_lock or 'absent')[:12]})",
                **facts,
            )
        notes.append(f"{LOCK_FILE_NAME} at the commit hashes to the recorded lock")
    if dirty:
        notes.append("trained from a work tree with uncommitted changes: the commit is an approximation")
    return ok("code", f"commit {commit[:12]} is in this repository; " + "; ".join(notes), **facts)


def _snapshot_path(client: Any, attempts: list[Any], data_sha256: str) -> tuple[str | None, str]:
    """Where the run's data gate read the snapshot with this digest (from its verified evidence)."""
    from gates.evidence.history import fetch_evidence

    for attempt in reversed(attempts):
        if attempt.kind == "data" and attempt.inputs.get("data_sha256") == data_sha256:
            with tempfile.TemporaryDirectory(prefix="sluice-trace-") as tmp:
                evidence, _ = fetch_evidence(client, attempt, Path(tmp))
            path = (evidence.get("subject") or {}).get("data_path")
            if path:
                return str(path), f"data-gate attempt {attempt.attempt or attempt.sha256[:12]}"
    return None, ""


def _recorded_path(home: Path | None, version_tags: dict[str, str], data_sha256: str) -> str | None:
    """The snapshot path a laptop run recorded (`<home>/runs/<run key>.json`) for this data digest."""
    from ml.runners import records

    key = tags.read_tag(version_tags, tags.RUN_KEY)
    record = records.read(home, key) if home is not None and key else None
    if not record or (record.get("identity") or {}).get("data_sha256") != data_sha256:
        return None
    return record.get("data")


def data_hop(
    client: Any, version_tags: dict[str, str], attempts: list[Any], given: str | None, home: Path | None
) -> Hop:
    """Hop 5: the snapshot the run used is still there and still hashes to the recorded sha256.

    Where it was: `--data`, else the laptop run's record (the user's file, by run key), else the
    path the run's data gate read (in a pipeline, its copy of the snapshot).
    """
    recorded = tags.read_tag(version_tags, tags.DATA_SHA256)
    if not recorded:
        return skip("data", f"the version records no {tags.DATA_SHA256}")
    facts: dict[str, Any] = {"sha256": recorded}
    path, source = given, "--data"
    if path is None:
        path, source = _recorded_path(home, version_tags, recorded), "the run record"
    if path is None:
        try:
            path, source = _snapshot_path(client, attempts, recorded)
        except SluiceError as exc:
            hop = unreachable if is_unreachable(exc) else fail
            return hop("data", f"the data gate's evidence cannot be read: {exc}", **facts)
    if path is None:
        return skip(
            "data", "no data-gate attempt on the run names the snapshot's path (pass --data PATH)", **facts
        )
    facts.update(path=path, path_from=source)
    scheme = urllib.parse.urlparse(path).scheme
    if scheme not in ("", "file"):
        return skip(
            "data",
            f"snapshot at {path}: not readable from here, check it where it lives (sha256 {recorded[:12]}…)",
            **facts,
        )
    local = Path(urllib.parse.urlparse(path).path if scheme == "file" else path)
    if not local.is_file():
        return fail("data", f"snapshot {local} ({source}) no longer exists", **facts)
    actual = sha256_file(local)
    facts["actual_sha256"] = actual
    if actual != recorded:
        return fail(
            "data",
            f"snapshot {local} changed since training: sha256 {actual[:12]}…, recorded {recorded[:12]}…",
            **facts,
        )
    return ok("data", f"snapshot {local} still hashes to {recorded[:12]}… (path from {source})", **facts)
