"""The one summary of a gate run: what blocked, what was inconclusive, what only advises.

Every place that reports a verdict takes its words and numbers from `summarize`: the evidence
document's `verdict`, `counts` and `summary` (written by `gates.evidence.document.finalize`), the
Markdown and HTML reports, `sluice gate`'s output, the `sluice run` progress line and the refusal
line. Counting in one place is what keeps "FAILED (+2 more)" from counting advisory drift as
failures while the evidence says "27/28 blocking checks passed".

Three kinds of finding, never mixed: a *blocking failure* (a blocking check that failed), an
*inconclusive* check (blocking, but the measurement could not be trusted: it blocks without
blaming the candidate) and an *advisory finding* (a non-blocking check that failed, e.g. drift
by default). Skipped checks (not applicable) are counted apart and are none of these.
"""

from __future__ import annotations

from dataclasses import dataclass

from gates.checks.result import GROUP_POLICY_SECTIONS, check_label, fmt
from ml.data.contract import column_label

PASSED, FAILED, INCONCLUSIVE = "passed", "failed", "inconclusive"
VERDICTS = (PASSED, FAILED, INCONCLUSIVE)
MAX_NAMED = 5
# How a drift measure reads in a finding: "drift in alcohol (PSI 3.683, KS D 0.41)".
DRIFT_MEASURES = {
    "drift.psi": "PSI {}",
    "drift.ks": "KS D {}",
    "drift.mean_shift": "mean shift {} sd",
    "drift.chi2": "Cramér's V {}",
    "drift.unseen": "unseen share {}",
}


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _describe(checks: tuple[dict, ...]) -> list[str]:
    """One phrase per finding; drift measures of one column are grouped into one phrase."""
    phrases: list[str] = []
    drift_at: dict[str, int] = {}
    for check in checks:
        measure = DRIFT_MEASURES.get(check["name"])
        column = check.get("column")
        if measure is None or column is None or check["observed"] is None:
            phrases.append(f"{check_label(check)}: {check['reason']}")
            continue
        text = measure.format(fmt(check["observed"]))
        if column in drift_at:
            index = drift_at[column]
            phrases[index] = phrases[index][:-1] + f", {text})"
        else:
            drift_at[column] = len(phrases)
            phrases.append(f"drift in {column_label(column)} ({text})")
    return phrases


def _named(checks: tuple[dict, ...], sep: str = "; ") -> str:
    phrases = _describe(checks)
    shown = sep.join(phrases[:MAX_NAMED])
    return shown + (f"{sep}and {len(phrases) - MAX_NAMED} more" if len(phrases) > MAX_NAMED else "")


def outcome(check: dict) -> str:
    """A check's outcome in a table: skipped, pass, FAIL, inconclusive or advisory."""
    if check.get("skipped"):
        return "skipped"
    if check["passed"]:
        return "pass"
    if check.get("inconclusive"):
        return INCONCLUSIVE
    return "FAIL" if check["blocking"] else "advisory"


def fix_for(check: dict) -> str:
    """How to proceed past one blocking check: the policy key and the flag, or the input to fix."""
    if check.get("inconclusive"):
        return "the host was too noisy to judge; re-run on a quieter machine (inconclusive checks block)"
    key = check.get("policy_key")
    group = check.get("group", "")
    if not key and group in ("contract", "nulls"):
        return "fix the data, or the data contract given with --contract"
    section = GROUP_POLICY_SECTIONS.get(group)
    remedy = "improve the model" if (key or section or "").startswith("model.") else "fix the data"
    if key:
        return f"{remedy}, or set {key} in a gate policy and pass it with --policy FILE"
    if section:
        return f"{remedy}, or set the thresholds under {section} in a gate policy (--policy FILE)"
    return "fix the input and re-run the gate"


@dataclass(frozen=True)
class Summary:
    """A gate run's findings, sorted into the three kinds and counted once."""

    kind: str
    total: int
    skipped: int
    blocking_passed: int
    failures: tuple[dict, ...]
    inconclusive: tuple[dict, ...]
    advisories: tuple[dict, ...]
    drifted: tuple[str, ...]

    @property
    def blocking(self) -> int:
        return self.blocking_passed + len(self.failures) + len(self.inconclusive)

    @property
    def verdict(self) -> str:
        if self.failures:
            return FAILED
        return INCONCLUSIVE if self.inconclusive else PASSED

    @property
    def passed(self) -> bool:
        return self.verdict == PASSED

    @property
    def counts(self) -> dict[str, int]:
        """The evidence's `counts`; blocking = blocking_passed + blocking_failed + inconclusive."""
        return {
            "checks": self.total,
            "skipped": self.skipped,
            "blocking": self.blocking,
            "blocking_passed": self.blocking_passed,
            "blocking_failed": len(self.failures),
            "inconclusive": len(self.inconclusive),
            "advisory_findings": len(self.advisories),
        }

    @property
    def word(self) -> str:
        """The verdict in a title: PASSED, PASSED with advisories, FAILED, INCONCLUSIVE."""
        if self.verdict != PASSED:
            return self.verdict.upper()
        return "PASSED with advisories" if self.advisories else "PASSED"

    @property
    def status(self) -> str:
        """The verdict in `sluice run`'s step column: passed, advisory, FAILED, inconclusive."""
        if self.verdict == FAILED:
            return "FAILED"
        if self.verdict == INCONCLUSIVE:
            return INCONCLUSIVE
        return "advisory" if self.advisories else PASSED

    def counts_line(self) -> str:
        """The counts every report shows, in the same words."""
        c = self.counts
        return (
            f"Blocking checks: {c['blocking_passed']}/{c['blocking']} passed, {c['blocking_failed']} failed, "
            f"{c['inconclusive']} inconclusive. Advisory findings: {c['advisory_findings']}. "
            f"Skipped: {c['skipped']}. Checks: {c['checks']}."
        )

    def _count_phrase(self) -> str:
        parts = [f"{self.blocking_passed}/{self.blocking} blocking checks passed"]
        if self.failures:
            parts.append(f"{len(self.failures)} failed")
        if self.inconclusive:
            parts.append(f"{len(self.inconclusive)} inconclusive")
        if self.advisories:
            parts.append(_plural(len(self.advisories), "advisory finding"))
        return ", ".join(parts)

    def _data_tail(self) -> str:
        if self.verdict != PASSED:
            return "data blocked: nothing may train on it"
        if not self.drifted:
            return "no drift detected"
        names = ", ".join(column_label(c) for c in self.drifted[:MAX_NAMED])
        more = f" and {len(self.drifted) - MAX_NAMED} more" if len(self.drifted) > MAX_NAMED else ""
        return f"drift in {_plural(len(self.drifted), 'feature')} ({names}{more}): retraining warranted"

    def sentence(self) -> str:
        """The evidence's `summary`: verdict, counts by kind, each finding named."""
        parts = [f"{self.kind.capitalize()} gate {self.word}: {self.blocking_passed}/{self.blocking} "
                 "blocking checks passed"]
        if self.failures:
            parts.append(f"{_plural(len(self.failures), 'blocking failure')}: {_named(self.failures)}")
        if self.inconclusive:
            parts.append(f"{len(self.inconclusive)} inconclusive: {_named(self.inconclusive)}")
        if self.advisories:
            parts.append(f"{_plural(len(self.advisories), 'advisory finding')}: {_named(self.advisories)}")
        if self.kind == "data":
            parts.append(self._data_tail())
        return ". ".join(part[0].upper() + part[1:] for part in parts) + "."

    def headline(self) -> str:
        """One short line for a progress display: the counts, then the first finding."""
        line = self._count_phrase()
        first = self.failures or self.inconclusive
        if first:
            line += f"; {_named(first[:1])}"
        elif self.advisories:
            line += f"; {_named(self.advisories[:1])}"
        if self.kind == "data" and self.verdict == PASSED:
            line += f"; {self._data_tail()}"
        return line

    def reason(self) -> str:
        """Why the gate did not pass, first finding first (the summary sentence when it passed)."""
        first = (self.failures or self.inconclusive)[:1]
        if not first:
            return self.sentence()
        others = []
        if len(self.failures) > 1:
            others.append(f"+{_plural(len(self.failures) - 1, 'more blocking failure')}")
        inconclusive = len(self.inconclusive) - (0 if self.failures else 1)
        if inconclusive:
            others.append(f"{'+' if not self.failures else ''}{inconclusive} inconclusive")
        if self.advisories:
            others.append(_plural(len(self.advisories), "advisory finding"))
        return f"{_named(first)}" + (f" ({', '.join(others)})" if others else "")

    def refusal(self) -> str:
        """The one line a refusal prints: verdict, first finding, counts, and how to proceed."""
        first = (self.failures or self.inconclusive)[:1]
        if not first:
            return f"{self.kind} gate passed"
        return f"{self.kind} gate {self.verdict}: {self.reason()}; to proceed: {fix_for(first[0])}"


def summarize_checks(kind: str, checks: list[dict]) -> Summary:
    """Sort checks into blocking passes, failures, inconclusive and advisory findings (v1 and v2 records)."""
    active = [c for c in checks if not c.get("skipped")]
    blocking = [c for c in active if c["blocking"]]
    drifted: list[str] = []
    for check in active:
        column = check.get("column")
        if check["group"] == "drift" and not check["passed"] and column is not None and column not in drifted:
            drifted.append(column)
    return Summary(
        kind=kind,
        total=len(checks),
        skipped=len(checks) - len(active),
        blocking_passed=sum(1 for c in blocking if c["passed"]),
        failures=tuple(c for c in blocking if not c["passed"] and not c.get("inconclusive")),
        inconclusive=tuple(c for c in blocking if c.get("inconclusive")),
        advisories=tuple(c for c in active if not c["blocking"] and not c["passed"]),
        drifted=tuple(drifted),
    )


def summarize(evidence: dict) -> Summary:
    """The summary of an evidence document (any schema version): computed from its checks."""
    return summarize_checks(evidence["kind"], evidence["checks"])
