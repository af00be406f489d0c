"""Turn the KFP local runner's verbose log into one progress line per step.

The local runner prints banners, streamed task output and outputs listings to stdout (and logs
cache hits through the root logger). `ProgressTap` stands in for stdout while a pipeline runs:
it keeps the full text in a log file, and from it prints one line when each task ends, using the
`::sluice::` marker the step printed (see `ml.components.markers`). The runner executes
ParallelFor iterations on threads, so state is kept per thread: a task's output arrives on the
thread that started it.

The patterns match kfp 2.17.0's messages (pinned in pyproject.toml); a kfp upgrade that rewords
them shows up as a test failure in tests/ml, not as silent loss of progress.
"""

from __future__ import annotations

import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO

from ml.components.markers import MARKER

ANSI = re.compile(r"\x1b\[[0-9;]*m")
EXECUTING = re.compile(r"Executing task '([^']+)'")
FINISHED = re.compile(r"Task '([^']+)' finished with status (SUCCESS|FAILURE)")
CACHE_HIT = re.compile(r"Task (\S+) cache hit")
SKIPPED = re.compile(r"Skipping conditional task (\S+)")

STEP_LABELS = {
    "load-snapshot": "load",
    "data-gate": "data gate",
    "split-snapshot": "split",
    "train-and-evaluate": "train+evaluate",
    "select-best": "select",
    "log-candidate": "log to MLflow",
    "model-gate": "model gate",
    "register-challenger": "register",
    "record-rejection": "record rejection",
    "record-data-gate": "record data gate",
}
STATUS_WIDTH = len("inconclusive")
LABEL_WIDTH = max(map(len, STEP_LABELS.values())) + 1  # two spaces at least before the status


@dataclass
class TaskRecord:
    name: str
    started: float
    ended: float | None = None
    status: str = "RUNNING"  # SUCCESS | FAILURE | CACHED
    marker: dict[str, Any] = field(default_factory=dict)
    last_lines: list[str] = field(default_factory=list)

    @property
    def wall(self) -> float:
        return (self.ended or self.started) - self.started

    @property
    def compute(self) -> float | None:
        return self.marker.get("seconds")

    @property
    def component(self) -> str:
        base = re.sub(r"-\d+$", "", self.name)
        return base if base in STEP_LABELS else self.name

    @property
    def status_word(self) -> str:
        """The status column: a gate's verdict (passed, advisory, FAILED, inconclusive, no-op), else
        ok / cached, and `error` for a step that broke (exit 2), never confused with a refusal."""
        if self.status == "FAILURE":
            return "error"
        if self.status == "CACHED":
            return "cached"
        return self.marker.get("status") or "ok"


def describe(marker: dict[str, Any]) -> str:
    """The detail column of a progress line, from the step's marker."""
    if "error" in marker:
        return f"error: {marker['error']}"
    step = marker.get("step")
    metrics = marker.get("metrics") or marker.get("holdout") or {}
    metric_text = " ".join(f"{k}={metrics[k]:.3f}" for k in ("accuracy", "f1", "roc_auc") if k in metrics)
    if step in ("data-gate", "model-gate"):
        return marker.get("headline") or marker.get("reason", "")
    if step == "train":
        return f"{marker.get('candidate')} (fit {marker.get('fit_seconds', 0):.2f} s) {metric_text}".rstrip()
    if step == "select":
        return f"best {marker.get('best')} {metric_text}"
    if step == "split":
        rows = marker.get("rows", {})
        return " / ".join(f"{k} {v}" for k, v in rows.items())
    if step == "log":
        reused = " (reused run)" if marker.get("reused") else ""
        return f"run {marker.get('run_id', '')[:12]}{reused} holdout {metric_text}"
    if step == "register":
        if marker.get("reused"):
            return f"reused version {marker.get('version')} (attempt {marker.get('attempt')} kept beside it)"
        return f"version {marker.get('version')} alias challenger"
    if step == "load":
        return ", ".join(f"{k}={v}" for k, v in marker.get("files", {}).items())
    if step in ("record-rejection", "record-data-gate"):
        return f"attempt kept: MLflow run {marker.get('run_id', '')[:12]}, evidence/{marker.get('attempt')}/"
    return ""


class ProgressTap(io.TextIOBase):
    """A stdout replacement: full text to `log`, one progress line per finished task to `out`."""

    def __init__(self, log: TextIO, out: TextIO, *, clock=time.monotonic) -> None:
        self.log = log
        self.out = out
        self.clock = clock
        self.opened = clock()  # offsets in timings are relative to this (just before the pipeline)
        self.tasks: list[TaskRecord] = []
        self.markers: list[dict[str, Any]] = []
        self.skipped: list[str] = []
        self._lock = threading.RLock()
        self._buffers: dict[int, str] = {}
        self._current: dict[int, TaskRecord] = {}
        self._shown = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self._lock:
            self.log.write(text)
            ident = threading.get_ident()
            buffered = self._buffers.get(ident, "") + text
            *lines, rest = buffered.split("\n")
            self._buffers[ident] = rest
            for line in lines:
                self._line(ident, ANSI.sub("", line))
        return len(text)

    def flush(self) -> None:
        with self._lock:
            self.log.flush()
            self.out.flush()

    def _line(self, ident: int, line: str) -> None:
        stripped = line.strip()
        task = self._current.get(ident)
        if stripped.startswith(MARKER):
            try:
                marker = json.loads(stripped[len(MARKER) :])
            except ValueError:
                return
            self.markers.append(marker)
            if task is not None:
                task.marker = marker
            return
        if match := EXECUTING.search(line):
            record = TaskRecord(match.group(1), self.clock())
            self._current[ident] = record
            self.tasks.append(record)
            return
        if match := FINISHED.search(line):
            record = task if task is not None and task.name == match.group(1) else self._find(match.group(1))
            if record is not None:
                record.ended, record.status = self.clock(), match.group(2)
                self._current.pop(ident, None)
                self._show(record)
            return
        if match := CACHE_HIT.search(line):
            now = self.clock()
            record = TaskRecord(match.group(1), now, now, "CACHED")
            self.tasks.append(record)
            self._show(record)
            return
        if match := SKIPPED.search(line):
            self.skipped.append(match.group(1))
            return
        if task is not None and stripped:
            task.last_lines = [*task.last_lines[-19:], stripped]

    def _find(self, name: str) -> TaskRecord | None:
        for record in reversed(self.tasks):
            if record.name == name and record.ended is None:
                return record
        return None

    def _show(self, record: TaskRecord) -> None:
        self._shown += 1
        label = STEP_LABELS.get(record.component, record.component)
        detail = describe(record.marker) if record.marker else ""
        if record.status == "FAILURE" and not record.marker.get("error") and record.last_lines:
            detail = record.last_lines[-1]
        timing = f"{record.wall:6.2f} s" if record.status != "CACHED" else "       -"
        status = f"{record.status_word:<{STATUS_WIDTH}}"
        line = f"  [{self._shown:2d}] {label:<{LABEL_WIDTH}} {status} {timing}  {detail}"
        self.out.write(line.rstrip() + "\n")
        self.out.flush()

    def marker_for(self, step: str) -> dict[str, Any] | None:
        found = [m for m in self.markers if m.get("step") == step]
        return found[-1] if found else None

    def failures(self) -> list[TaskRecord]:
        """Tasks whose last attempt failed. An attempt the runner retried (set_retry) and that then
        succeeded is not a failure: only a task's final attempt decides."""
        return [t for t in self._last_attempts().values() if t.status == "FAILURE"]

    def retried(self) -> dict[str, int]:
        """Tasks that succeeded after failed attempts: task name -> failed attempts."""
        failed: dict[str, int] = {}
        for task in self.tasks:
            if task.status == "FAILURE":
                failed[task.name] = failed.get(task.name, 0) + 1
        last = self._last_attempts()
        return {name: n for name, n in failed.items() if last[name].status != "FAILURE"}

    def _last_attempts(self) -> dict[str, TaskRecord]:
        last: dict[str, TaskRecord] = {}
        for task in self.tasks:  # in the order they ran: a retry comes after the attempt it repeats
            last[task.name] = task
        return last
