"""What a finished local pipeline run means, read from the markers its steps printed.

Exit codes as documented: 0 a version was registered (or reused) or a no-op run, 1 a gate
refused (reason on one line ending with how to proceed, evidence written, nothing registered; an
inconclusive gate refuses too), 2 (SluiceError) a step broke.

A step the runner retried counts by its last attempt (a note says it was retried), and when a
step's last attempt failed the registry has the final word: a complete, gate-passed version
registered for this run key (say by an attempt whose answer was lost in an outage) is a success.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ml.runners.progress import STEP_LABELS, ProgressTap, TaskRecord
from ml.runners.summary import print_summary
from sluice.errors import SluiceError

GATE_FAILED = 1
QUIETER_HINT = (
    "the host was too noisy to judge the candidate's latency (not a verdict on the model): "
    "re-run on a quieter machine"
)


def read_verdict(tap: ProgressTap, record: dict[str, Any], finish: Callable, log_path: Path, out: TextIO):
    _note_retries(tap, out)
    failures = tap.failures()
    if failures:
        return _registry_verdict(failures[0], record, finish, log_path, out)
    data_gate = _required(tap, "data-gate", "the pipeline ended before its data gate ran", finish, log_path)
    if not data_gate.get("passed"):
        record["reason"] = _refusal("data", data_gate)
        return _gate_failed(record, finish, out)
    if not data_gate.get("train"):
        out.write("sluice: the data gate passed and found no drift; nothing was retrained (no-op run)\n")
        if record.get("evidence_dir"):
            out.write(f"  evidence: {record['evidence_dir']}\n")
        return finish("no-op", 0)
    model_gate = _required(
        tap, "model-gate", "the pipeline ended before its model gate ran", finish, log_path
    )
    if not model_gate.get("passed"):
        record["reason"] = _refusal("model", model_gate)
        if model_gate.get("inconclusive"):
            out.write(f"  {QUIETER_HINT}\n")
        print_summary(record, out)
        return _gate_failed(record, finish, out)
    registered = _required(
        tap, "register", "the model gate passed but nothing was registered", finish, log_path
    )
    record.update(version=registered["version"], reused=bool(registered.get("reused")))
    if record["reused"]:
        out.write(f"sluice: reused version {record['version']} (same data, code and parameters)\n")
    outcome = finish("registered", 0)
    print_summary(record, out)
    return outcome


def _note_retries(tap: ProgressTap, out: TextIO) -> None:
    for name, failed in tap.retried().items():
        label = STEP_LABELS.get(re.sub(r"-\d+$", "", name), name)
        attempts = f"{failed} failed attempt{'s' if failed > 1 else ''}"
        out.write(f"  note: {label} succeeded after {attempts} (retried)\n")


def _registry_verdict(failed: TaskRecord, record: dict, finish: Callable, log_path: Path, out: TextIO):
    """A step's last attempt failed: success only if the registry holds this run key's version."""
    from ml.registry.models import version_for_run_key

    reason = failed.marker.get("error") or (failed.last_lines[-1] if failed.last_lines else "no output")
    try:
        version = version_for_run_key(record["tracking_uri"], record["model_name"], record["run_key"])
    except SluiceError as exc:
        finish("error", 2)
        raise SluiceError(f"pipeline step {failed.name} failed: {reason}; {exc} (log: {log_path})") from None
    if version is None:
        finish("error", 2)
        raise SluiceError(f"pipeline step {failed.name} failed: {reason} (log: {log_path})")
    out.write(f"  note: step {failed.name} failed, but the registry holds version {version} for this run\n")
    record.update(version=version, reused=False)
    outcome = finish("registered", 0)
    print_summary(record, out)
    return outcome


def _refusal(kind: str, marker: dict) -> str:
    """The gate's own refusal line (verdict, first finding, counts, how to proceed)."""
    return marker.get("refusal") or f"{kind} gate failed: {marker.get('reason')}"


def _required(tap: ProgressTap, step: str, missing: str, finish: Callable, log_path: Path) -> dict:
    marker = tap.marker_for(step)
    if marker is None:
        finish("error", 2)
        raise SluiceError(f"{missing} (log: {log_path})")
    return marker


def _gate_failed(record: dict, finish: Callable, out: TextIO):
    result = finish("gate-failed", GATE_FAILED)
    if record.get("evidence_dir") and not record.get("candidates"):  # else print_summary showed it
        out.write(f"  evidence: {record['evidence_dir']}\n")
    out.write("  nothing was registered\n")
    print(f"sluice: {record['reason']}", file=sys.stderr)
    return result
