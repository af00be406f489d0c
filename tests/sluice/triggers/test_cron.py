"""Schedules are judged as a Kubernetes CronJob judges them (robfig/cron v3 ParseStandard, no TZ=),
with croniter only computing fire times. The cases are the ones the research compared against
robfig's parser (robfig accepts: True); croniter alone disagrees on eight of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sluice.triggers.cron import CronError, check, next_fires

CASES = [
    ("*/15 * * * *", True),
    ("0 3 * * *", True),
    ("0 3 * * mon-fri", True),
    ("0 3 1,15 * *", True),
    ("0 0 * JAN,jul SUN", True),
    ("0 0 ? * *", True),
    ("*/61 * * * *", True),
    ("5/10 * * * *", True),
    ("@hourly", True),
    ("@daily", True),
    ("@midnight", True),
    ("@weekly", True),
    ("@monthly", True),
    ("@yearly", True),
    ("@annually", True),
    ("@every 1h30m", True),
    ("0 3 * * * ", True),
    ("0 3 * * 7", False),
    ("60 * * * *", False),
    ("0 24 * * *", False),
    ("0 0 0 * *", False),
    ("0 0 * 13 *", False),
    ("* * * *", False),
    ("0 * * * * *", False),
    ("0 0 L * *", False),
    ("0 0 * * 5L", False),
    ("0 0 * * 1#2", False),
    ("0 0 15W * *", False),
    ("*/0 * * * *", False),
    ("5-1 * * * *", False),
    ("@reboot", False),
    ("@HOURLY", False),
    ("CRON_TZ=UTC 0 3 * * *", False),
    ("TZ=Europe/Paris 0 3 * * *", False),
    ("", False),
    ("@every 5", False),
]


@pytest.mark.parametrize(("expression", "accepted"), CASES, ids=[repr(c[0]) for c in CASES])
def test_schedule_grammar_matches_kubernetes(expression: str, accepted: bool) -> None:
    if accepted:
        check(expression)
    else:
        with pytest.raises(CronError) as refused:
            check(expression)
        assert "\n" not in str(refused.value)


@pytest.mark.parametrize(
    ("expression", "field"),
    [
        ("0 3 * * 7", "day of week: 7"),
        ("61 * * * *", "minute: 61"),
        ("0 0 * 13 *", "month: 13"),
        ("0 * * * * *", "expected exactly 5 fields"),
        ("TZ=UTC 0 3 * * *", "timeZone"),
        ("0 0 L * *", "day of month: 'L'"),
    ],
)
def test_a_refusal_names_the_field(expression: str, field: str) -> None:
    with pytest.raises(CronError, match=field.replace("*", r"\*")):
        check(expression)


def test_next_fires_follow_the_expression_in_its_time_zone() -> None:
    monday_3am = [d.isoformat() for d in next_fires("0 3 * * mon", datetime(2026, 11, 25, 12, tzinfo=UTC))]
    assert monday_3am == [
        "2026-11-30T03:00:00+00:00",
        "2026-12-07T03:00:00+00:00",
        "2026-12-14T03:00:00+00:00",
    ]
    assert (
        next_fires("@daily", datetime(2026, 11, 30, 23, 59, tzinfo=UTC), 1)[0]
        .isoformat()
        .startswith("2026-12-01T00:00")
    )
