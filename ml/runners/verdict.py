"""What a finished local pipeline run means, read from the markers its steps printed.

Exit codes as documented: 0 a version was registered (or reused) or a no-op run, 1 a gate
refused (reason on one line ending with how to proceed, evidence written, nothing registered; an
inconclusive gate refuses too), 2 (SluiceError) a step broke.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from ml.runners.progress import ProgressTap
from ml.runners.summary import print_summary
from sluice.errors import SluiceError

GATE_FAILED = 1
QUIETER_HINT = (
    "the host was too noisy to judge the candidate's latency (not a verdict on the model): "
    "re-run on a quieter machine"
)


def read_verdict(tap: ProgressTap, record: dict[str, Any], finish: Callable, log_path: Path, out: TextIO):
    failures = tap.failures()
    if failures:
        first = failures[0]
        reason = first.marker.get("error") or (first.last_lines[-1] if first.last_lines else "no output")
        finish("error", 2)
        raise SluiceError(f"pipeline step {first.name} failed: {reason} (log: {log_path})")
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
