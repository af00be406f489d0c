"""`sluice monitor`'s judgement: does this window of data warrant retraining, and has it been asked before?

Every evaluation runs the data gate on the window (contract, quality and the drift checks against
the reference; the gate's own thresholds) and is recorded as one MLflow run in `<model>-monitoring`
with the gate's evidence attached, whatever the outcome, "no drift: nothing triggered" included.
The decision, in order:

- `refused-data`: the window fails the data gate; retraining on it would be refused anyway.
- `no-drift`: drift mode and no drift found.
- `duplicate`: this snapshot (by sha256) already triggered a retraining, or (new-data mode) the
  run key `sluice run` would compute for it already registered a version: one snapshot, one run.
- `cooldown`: another retraining was triggered less than the policy's `retrain_cooldown_hours` ago.
- `triggered`: the caller retrains (locally) or posts the signed event (in a cluster).

An observation may create a candidate; it never promotes one: the retraining still passes both
gates, and production still changes only through a pull request.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sluice import tags
from sluice.atomic import write_json
from sluice.digest import sha256_file

TRIGGERED = "triggered"
DECISIONS = ("triggered", "no-drift", "duplicate", "cooldown", "refused-data")
KINDS = ("drift", "data")


def experiment_name(model: str) -> str:
    return f"{model}-monitoring"


@dataclass(frozen=True)
class Window:
    model: str
    current: Path
    reference: Path
    contract: Path
    policy: Path | None
    kind: str  # drift | data


@dataclass
class Evaluation:
    decision: str
    reason: str
    kind: str
    data_sha256: str
    reference_sha256: str
    drift_detected: bool
    drifted: list[str]
    evidence: Path
    run_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def triggered(self) -> bool:
        return self.decision == TRIGGERED


class Ledger:
    """The evaluations of one model, as MLflow runs: what was seen, decided and done."""

    def __init__(self, tracking_uri: str, artifact_root: str, model: str):
        from ml.registry.client import client, connect, experiment_id

        mlflow = connect(tracking_uri)
        self.experiment_id = experiment_id(mlflow, experiment_name(model), artifact_root)
        self.client = client(tracking_uri)

    def _triggered(self, extra: str = "") -> list[Any]:
        query = f"tags.`{tags.TRIGGER_DECISION}` = '{TRIGGERED}'" + extra
        return self.client.search_runs(
            [self.experiment_id], filter_string=query, order_by=["attributes.start_time DESC"], max_results=1
        )

    def triggered_for(self, data_sha256: str) -> Any | None:
        found = self._triggered(f" and tags.`{tags.DATA_SHA256}` = '{data_sha256}'")
        return found[0] if found else None

    def last_triggered(self) -> Any | None:
        found = self._triggered()
        return found[0] if found else None

    def record(self, window: Window, ev: Evaluation) -> str:
        run_tags = {
            "mlflow.runName": f"{window.kind}-{ev.decision}-{ev.data_sha256[:12]}",
            tags.MODEL_NAME: window.model,
            tags.TRIGGER_DECISION: ev.decision,
            tags.TRIGGER_KIND: window.kind,
            tags.DATA_SHA256: ev.data_sha256,
            tags.REFERENCE_SHA256: ev.reference_sha256,
            tags.TRIGGER_DRIFTED: ",".join(ev.drifted)[:5000],
            tags.PREFIX + "trigger.reason": ev.reason[:5000],
        }
        run = self.client.create_run(self.experiment_id, tags=run_tags)
        run_id = run.info.run_id
        self.client.log_metric(run_id, "drift_detected", float(ev.drift_detected))
        self.client.log_metric(run_id, "drifted_features", float(len(ev.drifted)))
        for path in sorted(ev.evidence.parent.glob(ev.evidence.stem + ".*")):
            self.client.log_artifact(run_id, str(path), "evidence")
        self.client.set_terminated(run_id, "FINISHED")
        return run_id

    def outcome(self, run_id: str, outcome: str) -> None:
        """What the triggered retraining did (registered, refused, posted ...), on the evaluation's run."""
        self.client.set_tag(run_id, tags.TRIGGER_OUTCOME, outcome[:5000])


@contextlib.contextmanager
def exclusive(home: Path, model: str) -> Iterator[None]:
    """One evaluation of a model at a time on this machine: two monitors racing on the same new
    snapshot would both see "not triggered yet" and both retrain."""
    lock_path = home / "monitor" / f"{model}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run_time(run: Any) -> dt.datetime:
    return dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC)


def decide(
    window: Window,
    evidence: dict[str, Any],
    ledger: Ledger,
    cooldown_hours: float,
    now: dt.datetime,
    already_trained: str | None = None,
) -> tuple[str, str]:
    """(decision, reason) for a judged window; `already_trained` names a registered run of this snapshot."""
    sha = evidence["subject"]["data_sha256"]
    if not evidence.get("passed"):
        failed = [c["name"] for c in evidence.get("checks", []) if c.get("blocking") and not c.get("passed")]
        return "refused-data", f"the window fails the data gate ({', '.join(failed[:5]) or 'see evidence'})"
    drifted = evidence.get("drifted_features") or []
    if window.kind == "drift" and not evidence.get("drift_detected"):
        return "no-drift", "no drift: nothing triggered"
    earlier = ledger.triggered_for(sha)
    if earlier is not None:
        return "duplicate", (
            f"snapshot {sha[:12]} already triggered a retraining at {_run_time(earlier):%Y-%m-%d %H:%M} UTC "
            f"(evaluation {earlier.info.run_id}): never twice"
        )
    if already_trained:
        return "duplicate", f"snapshot {sha[:12]} was already trained ({already_trained}): never twice"
    last = ledger.last_triggered()
    if last is not None and cooldown_hours > 0:
        ready = _run_time(last) + dt.timedelta(hours=cooldown_hours)
        if now < ready:
            return "cooldown", (
                f"a retraining was triggered at {_run_time(last):%Y-%m-%d %H:%M} UTC; the policy's "
                f"retrain_cooldown_hours ({cooldown_hours:g}) allows the next at {ready:%Y-%m-%d %H:%M} UTC"
            )
    if window.kind == "drift":
        return TRIGGERED, f"drift in {len(drifted)} feature(s): {', '.join(drifted[:8])}"
    return TRIGGERED, f"new snapshot {sha[:12]}"


def evaluate(
    window: Window,
    ledger: Ledger,
    evidence_dir: Path,
    already_trained: str | None = None,
    now: dt.datetime | None = None,
) -> Evaluation:
    """Judge the window with the data gate, decide, record; the caller acts on `triggered`."""
    from gates.data_gate import run_data_gate
    from gates.gate_policy import load_policy

    now = now or dt.datetime.now(dt.UTC)
    sha = sha256_file(window.current)
    out_dir = evidence_dir / f"{now:%Y%m%dT%H%M%S%fZ}-{sha[:12]}"
    evidence = run_data_gate(
        window.contract, window.reference, window.current, window.policy, out_dir, stem="data-evidence"
    )
    policy = load_policy(window.policy, window.model)
    cooldown = float(policy["data"]["drift"].get("retrain_cooldown_hours", 0))
    decision, reason = decide(window, evidence, ledger, cooldown, now, already_trained)
    ev = Evaluation(
        decision=decision,
        reason=reason,
        kind=window.kind,
        data_sha256=sha,
        reference_sha256=evidence["subject"]["reference_sha256"],
        drift_detected=bool(evidence.get("drift_detected")),
        drifted=list(evidence.get("drifted_features") or []),
        evidence=out_dir / "data-evidence.json",
        extra={"cooldown_hours": cooldown},
    )
    ev.run_id = ledger.record(window, ev)
    write_json(
        out_dir / "decision.json", {"decision": ev.decision, "reason": ev.reason, "mlflow_run_id": ev.run_id}
    )
    return ev
