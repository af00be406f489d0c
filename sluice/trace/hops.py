"""What a trace is made of: hops, each agreeing (✔), disagreeing (✘) or not verifiable here (an en dash).

A hop never raises: whatever goes wrong while checking it (a missing file, a deleted version, a
server that does not answer) becomes its ✘ line naming what is missing, so the rest of the trace
still prints. Only the verdict of the whole, the exit code, is computed from all of them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

OK, FAIL, SKIP = "ok", "fail", "skip"
MARKS = {OK: "✔", FAIL: "✘", SKIP: "–"}  # noqa: RUF001 - an en dash: "not verifiable here"
# The hops in the order a trace walks them, from what runs back to where it came from.
HOP_NAMES = ("overlay", "version", "evidence", "code", "data", "image")


@dataclass
class Hop:
    """One step of the walk: its verdict, the one-line reason, and what was found on the way."""

    name: str
    status: str
    reason: str
    facts: dict[str, Any] = field(default_factory=dict)
    unreachable: bool = False  # the source could not be read (server down), not a disagreement

    @property
    def mark(self) -> str:
        return MARKS[self.status]


def ok(name: str, reason: str, **facts: Any) -> Hop:
    return Hop(name, OK, reason, facts)


def fail(name: str, reason: str, **facts: Any) -> Hop:
    return Hop(name, FAIL, reason, facts)


def skip(name: str, reason: str, **facts: Any) -> Hop:
    return Hop(name, SKIP, reason, facts)


def unreachable(name: str, reason: str, **facts: Any) -> Hop:
    return Hop(name, FAIL, reason, facts, unreachable=True)


@dataclass
class Trace:
    """The walk for one (model, environment) at one git commit."""

    model: str | None
    env: str | None
    ref: str
    commit: str | None
    version: str | None = None
    image: str | None = None
    hops: list[Hop] = field(default_factory=list)

    @property
    def disagreements(self) -> list[Hop]:
        return [h for h in self.hops if h.status == FAIL and not h.unreachable]

    @property
    def unreachable(self) -> list[Hop]:
        return [h for h in self.hops if h.unreachable]

    def exit_code(self) -> int:
        """1 when a hop disagrees (a finding outranks a gap), 2 when one could not be read, else 0."""
        if self.disagreements:
            return 1
        return 2 if self.unreachable else 0

    def as_dict(self) -> dict[str, Any]:
        body = asdict(self)
        body["verdict"] = {0: "agrees", 1: "disagrees", 2: "incomplete"}[self.exit_code()]
        return body


def exit_code(traces: list[Trace]) -> int:
    codes = {t.exit_code() for t in traces}
    return 1 if 1 in codes else (2 if 2 in codes else 0)
