"""Production never syncs by itself; staging always does.

Two independent guarantees are checked on the rendered manifests: the production Application has
no `automated` block at all (not even a disabled one), and the AppProject's sync windows refuse
automated syncs of it at every minute of the week while allowing manual ones only in working
hours. The window verdicts follow Argo CD's own rule, `SyncWindows.CanSync(isManual)` in
argo-cd `pkg/apis/application/v1alpha1/types.go`: while any matching deny window is active a sync
runs only if it is manual and every active deny window has `manualSync`; otherwise an active
allow window permits it, inactive allow windows forbid it (manual only with their
`manualSync`), and no windows at all mean yes. A window is active at t when its cron schedule
fired within the `duration` before t.
"""

from __future__ import annotations

import copy
import fnmatch
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.conftest import REPO_ROOT
from tests.manifests.argocd.conftest import kustomize

PRODUCTION_PATH = "clusters/production"
PRODUCTION_NAMESPACE = "models-production"
MONDAY = datetime(2026, 8, 24, tzinfo=UTC)  # any Monday; the windows repeat weekly


def automated_blocks(node: Any, where: str = "") -> list[str]:
    """Every path at which an `automated` key appears, however deep, whatever its value."""
    found: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            path = f"{where}.{key}" if where else str(key)
            if key == "automated":
                found.append(path)
            found += automated_blocks(value, path)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += automated_blocks(value, f"{where}[{i}]")
    return found


def targets_production(app: dict[str, Any]) -> bool:
    spec = app.get("spec", {})
    sources = [spec.get("source") or {}, *(spec.get("sources") or [])]
    return (
        any(str(s.get("path", "")).strip("/") == PRODUCTION_PATH for s in sources)
        or spec.get("destination", {}).get("namespace") == PRODUCTION_NAMESPACE
    )


def production_violations(docs: list[dict[str, Any]]) -> list[str]:
    """Why production could sync automatically, given the rendered `.argocd/` objects."""
    problems = []
    for doc in docs:
        if doc["kind"] == "ApplicationSet":
            # Sluice deliberately has no generator between git and the production policy: a
            # template can only be judged by rendering every generator element, so we forbid it.
            problems.append(
                f"ApplicationSet/{doc['metadata']['name']}: templated Applications are not allowed "
                "here; write the Application out (see README, Argo CD delivery)"
            )
        if doc["kind"] == "Application" and targets_production(doc):
            problems += [f"Application/{doc['metadata']['name']}: {p}" for p in automated_blocks(doc)]
    return problems


def test_production_application_can_never_sync_automatically(argocd_docs, applications) -> None:
    production = [a for a in applications.values() if targets_production(a)]
    assert [a["metadata"]["name"] for a in production] == ["sluice-production"]
    assert production_violations(argocd_docs) == []


@pytest.mark.parametrize(
    "automated",
    [{"prune": True, "selfHeal": True}, {"enabled": False}, {}, None],
    ids=["full", "disabled", "empty", "null"],
)
def test_the_check_catches_any_automated_block(argocd_docs, automated) -> None:
    docs = copy.deepcopy(argocd_docs)
    (prod,) = [d for d in docs if d["metadata"]["name"] == "sluice-production"]
    prod["spec"]["syncPolicy"]["automated"] = automated
    assert production_violations(docs) == ["Application/sluice-production: spec.syncPolicy.automated"]


def test_the_check_refuses_a_generator_that_could_template_production(argocd_docs) -> None:
    appset = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "envs"},
        "spec": {"generators": [{"git": {"directories": [{"path": "clusters/*"}]}}], "template": {}},
    }
    assert production_violations([*argocd_docs, appset])[0].startswith("ApplicationSet/envs")


def test_production_sync_options_and_protection(applications) -> None:
    spec = applications["sluice-production"]["spec"]
    options = set(spec["syncPolicy"]["syncOptions"])
    assert {
        "ServerSideApply=true",
        "PruneLast=true",
        "CreateNamespace=false",
        "FailOnSharedResource=true",
    } <= options
    assert "ignoreDifferences" not in spec, (
        "production ignores no field (no KServe/registry mutation of ours)"
    )
    meta = applications["sluice-production"]["metadata"]
    assert "resources-finalizer.argocd.argoproj.io" not in meta.get("finalizers", []), (
        "deleting the production Application must not delete production"
    )


def test_staging_syncs_automatically_with_prune_and_self_heal(applications) -> None:
    policy = applications["sluice-staging"]["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True}
    assert {"ServerSideApply=true", "PruneLast=true", "CreateNamespace=false"} <= set(policy["syncOptions"])


def test_root_application_renders_only_the_argocd_folder(applications) -> None:
    root = applications["sluice-root"]
    assert root["spec"]["project"] == "sluice-bootstrap"
    assert production_violations(kustomize(REPO_ROOT / root["spec"]["source"]["path"])) == []


# --- sync windows ---------------------------------------------------------------------------


def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        if part == "*":
            values.update(range(low, high + 1))
        elif "-" in part:
            a, b = (int(x) for x in part.split("-"))
            values.update(range(a, b + 1))
        elif part.isdigit():
            values.add(int(part))
        else:
            raise AssertionError(f"cron syntax {part!r} not understood by this test; extend _cron_field")
    return values


def _triggers(schedule: str, start: datetime, end: datetime) -> list[datetime]:
    minute, hour, dom, month, dow = schedule.split()
    minutes, hours = _cron_field(minute, 0, 59), _cron_field(hour, 0, 23)
    doms, months = _cron_field(dom, 1, 31), _cron_field(month, 1, 12)
    dows = {d % 7 for d in _cron_field(dow, 0, 7)}
    out, day = [], start.replace(hour=0, minute=0)
    while day < end:
        # cron semantics: when both day fields are restricted, either may match
        restricted = dom != "*" and dow != "*"
        dom_ok, dow_ok = day.day in doms, (day.isoweekday() % 7) in dows
        if day.month in months and ((dom_ok or dow_ok) if restricted else (dom_ok and dow_ok)):
            out += [day.replace(hour=h, minute=m) for h in sorted(hours) for m in sorted(minutes)]
        day += timedelta(days=1)
    return out


def _duration(text: str) -> timedelta:
    units = {"h": "hours", "m": "minutes", "s": "seconds"}
    assert text[-1] in units and text[:-1].isdigit(), f"duration {text!r} not understood by this test"
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def _matches(window: dict[str, Any], app: dict[str, Any]) -> bool:
    dest = app["spec"]["destination"]
    return (
        any(fnmatch.fnmatchcase(app["metadata"]["name"], g) for g in window.get("applications", []))
        or any(fnmatch.fnmatchcase(dest.get("server", ""), g) for g in window.get("clusters", []))
        or any(fnmatch.fnmatchcase(dest.get("namespace", ""), g) for g in window.get("namespaces", []))
    )


def _verdicts(windows: list[dict[str, Any]], app: dict[str, Any]) -> list[tuple[datetime, bool, bool]]:
    """(minute, automated allowed, manual allowed) for every minute of one week."""
    mine = [w for w in windows if _matches(w, app)]
    spans = []
    for w in mine:
        assert w.get("timeZone", "UTC") == "UTC", "the simulation runs in UTC"
        length = _duration(w["duration"])
        spans.append(
            (
                w,
                [
                    (s, s + length)
                    for s in _triggers(w["schedule"], MONDAY - timedelta(days=7), MONDAY + timedelta(days=7))
                ],
            )
        )
    out = []
    for minute in range(7 * 24 * 60):
        t = MONDAY + timedelta(minutes=minute, seconds=30)  # mid-minute: no boundary ambiguity
        active = [w for w, runs in spans if any(s < t < e for s, e in runs)]
        out.append((t, _can_sync(mine, active, False), _can_sync(mine, active, True)))
    return out


def _can_sync(matching: list[dict], active: list[dict], manual: bool) -> bool:
    if not matching:
        return True
    denies = [w for w in active if w["kind"] == "deny"]
    if denies:
        return manual and all(w.get("manualSync", False) for w in denies)
    if any(w["kind"] == "allow" for w in active):
        return True
    inactive_allows = [w for w in matching if w["kind"] == "allow" and w not in active]
    if inactive_allows:
        return manual and all(w.get("manualSync", False) for w in inactive_allows)
    return True


def _working_hours(t: datetime) -> bool:
    return t.isoweekday() in (1, 2, 3, 4) and 9 <= t.hour < 16


def test_windows_refuse_automated_production_syncs_all_week(projects, applications) -> None:
    verdicts = _verdicts(projects["sluice"]["spec"]["syncWindows"], applications["sluice-production"])
    assert [t.isoformat() for t, automated, _ in verdicts if automated] == []
    wrong_manual = [t.isoformat() for t, _, manual in verdicts if manual != _working_hours(t)]
    assert wrong_manual == [], f"manual sync verdict wrong at {wrong_manual[:3]} ..."


def test_windows_notice_a_gap(projects, applications) -> None:
    """Drop the weekend window and automation slips through: the simulation can fail."""
    windows = [w for w in projects["sluice"]["spec"]["syncWindows"] if w["schedule"] != "0 9 * * 5"]
    verdicts = _verdicts(windows, applications["sluice-production"])
    assert any(automated for _, automated, _ in verdicts)


def test_windows_leave_staging_alone(projects, applications) -> None:
    verdicts = _verdicts(projects["sluice"]["spec"]["syncWindows"], applications["sluice-staging"])
    assert all(automated and manual for _, automated, manual in verdicts)
