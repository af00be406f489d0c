"""Cron expressions exactly as a Kubernetes CronJob accepts them, and their next fire times.

Kubernetes validates `spec.schedule` with robfig/cron v3's `ParseStandard` and then refuses any
`TZ=`/`CRON_TZ=` prefix (use `spec.timeZone`). croniter computes fire times well but is more
lenient than robfig (it takes `7` for Sunday, six fields, `L`, `W`, `#`, reversed ranges,
`@HOURLY`), so a schedule it likes could be refused at sync time. `check()` is the grammar robfig
v3 implements (5 fields or a descriptor; names, lists, ranges and steps; day of week 0-6), and it
only hands croniter expressions robfig would accept. Errors are one line naming the field.
"""

from __future__ import annotations

import re
from datetime import datetime

from sluice.errors import SluiceError

DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_GO_DURATION = re.compile(r"^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$")
_MONTHS = {
    m: i + 1
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    )
}
_DAYS = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
FIELDS = (
    ("minute", 0, 59, None),
    ("hour", 0, 23, None),
    ("day of month", 1, 31, None),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


class CronError(SluiceError):
    """A schedule Kubernetes would refuse; the message names the field."""


def _number(token: str, names: dict | None, what: str, expr: str) -> int:
    if names and token.lower() in names:
        return names[token.lower()]
    if not re.fullmatch(r"\+?\d+", token):  # Go's strconv.Atoi: no negatives, no letters
        kind = "a number or a name" if names else "a number"
        raise CronError(f"{what}: {token!r} in {expr!r} is not {kind}")
    return int(token)


def _check_term(expr: str, what: str, low: int, high: int, names: dict | None) -> None:
    parts = expr.split("/")
    if len(parts) > 2:
        raise CronError(f"{what}: too many slashes in {expr!r}")
    bounds = parts[0].split("-")
    if bounds[0] in ("*", "?"):
        if len(bounds) > 1:
            raise CronError(f"{what}: {expr!r} is not a range")
        start, end = low, high
    else:
        if len(bounds) > 2:
            raise CronError(f"{what}: too many hyphens in {expr!r}")
        start = _number(bounds[0], names, what, expr)
        end = _number(bounds[1], names, what, expr) if len(bounds) == 2 else start
    if len(parts) == 2:
        if _number(parts[1], None, what, expr) == 0:
            raise CronError(f"{what}: the step in {expr!r} must be positive")
        if len(bounds) == 1:
            end = high  # "N/step" runs from N to the field's maximum
    if start < low:
        raise CronError(f"{what}: {start} in {expr!r} is below the minimum {low}")
    if end > high:
        raise CronError(f"{what}: {end} in {expr!r} is above the maximum {high}")
    if start > end:
        raise CronError(f"{what}: the range {expr!r} starts after it ends")


def check(schedule: str) -> str:
    """The schedule as five fields (or `@every D`); CronError when Kubernetes would refuse it."""
    if not isinstance(schedule, str) or not schedule.strip():
        raise CronError("schedule: empty (five fields: minute hour day-of-month month day-of-week)")
    if "TZ" in schedule:
        raise CronError("schedule: TZ= and CRON_TZ= are refused by Kubernetes; set timeZone instead")
    text = schedule.strip()
    if text.startswith("@"):
        if text in DESCRIPTORS:
            return DESCRIPTORS[text]
        if text.startswith("@every ") and _GO_DURATION.match(text[len("@every ") :]):
            return text
        raise CronError(
            f"schedule: unknown descriptor {text!r} "
            f"(use {', '.join(DESCRIPTORS)}, @every <duration> or 5 fields)"
        )
    fields = text.split()
    if len(fields) != 5:
        raise CronError(
            f"schedule: expected exactly 5 fields (minute hour day-of-month month day-of-week), found "
            f"{len(fields)} in {text!r}"
        )
    for value, (what, low, high, names) in zip(fields, FIELDS, strict=True):
        for term in value.split(","):
            if not term:
                raise CronError(f"{what}: empty list item in {value!r}")
            _check_term(term, what, low, high, names)
    return " ".join(fields)


def next_fires(schedule: str, start: datetime, count: int = 3) -> list[datetime]:
    """The next `count` fire times after `start` (timezone-aware; evaluated in start's zone)."""
    from croniter import croniter

    spec = check(schedule)
    if spec.startswith("@every"):
        raise CronError("schedule: @every has no calendar (it counts from when the controller started)")
    it = croniter(spec, start)
    return [it.get_next(datetime) for _ in range(count)]
