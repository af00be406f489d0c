"""The argoproj.io/Application health check, run by a real Lua interpreter in the sandbox
test_health_lua.py sets up, against Application objects shaped like Argo CD's API answers
(data/api/, validated against the upstream Application CRD by tests/sluice/argocd/test_api.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.manifests.argocd.conftest import ARGOCD_DIR, DATA
from tests.manifests.argocd.test_health_lua import ARGO_CD_HEALTH, HARNESS, lua_literal

SCRIPT = ARGOCD_DIR / "health" / "application.lua"


def run_health(lua: str, obj: dict[str, Any], tmp_path: Path) -> tuple[str, str]:
    harness, data = tmp_path / "harness.lua", tmp_path / "object.lua"
    harness.write_text(HARNESS)
    data.write_text("return " + lua_literal(obj))
    out = subprocess.run(
        [lua, str(harness), str(SCRIPT), str(data)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    status, message = out.stdout.split("\n")[:2]  # the message may be empty
    return status, message


def app(name: str) -> dict[str, Any]:
    return json.loads((DATA / "api" / f"{name}.json").read_text())


@pytest.mark.parametrize(
    ("name", "expected"),
    [("sluice-staging", "Healthy"), ("sluice-production", "Progressing"), ("sluice-never-synced", "Missing")],
)
def test_the_childs_own_health_is_reported(lua: str, tmp_path: Path, name: str, expected: str) -> None:
    status, _ = run_health(lua, app(name), tmp_path)
    assert status == expected


def test_degraded_child_stops_the_wave_with_its_message(lua: str, tmp_path: Path) -> None:
    obj = app("sluice-staging")
    message = "ClusterPolicy verify-sluice-images: not ready"
    obj["status"]["health"] = {"status": "Degraded", "message": message}
    assert run_health(lua, obj, tmp_path) == ("Degraded", message)


def test_a_child_not_yet_assessed_is_progressing_not_healthy(lua: str, tmp_path: Path) -> None:
    """Just created by the root: no status yet. Healthy here would let the next wave through."""
    obj = app("sluice-staging")
    for status in (None, {}, {"health": {}}):
        if status is None:
            obj.pop("status", None)
        else:
            obj["status"] = status
        assert run_health(lua, obj, tmp_path) == (
            "Progressing",
            "Waiting for Argo CD to assess the application",
        )


def test_a_child_being_deleted_is_progressing(lua: str, tmp_path: Path) -> None:
    obj = app("sluice-staging")
    obj["metadata"]["deletionTimestamp"] = "2026-08-25T10:00:00Z"
    assert run_health(lua, obj, tmp_path) == ("Progressing", "Being deleted")


def test_every_answer_is_an_argo_cd_health_status(lua: str, tmp_path: Path) -> None:
    for name in ("sluice-staging", "sluice-production", "sluice-never-synced"):
        status, _ = run_health(lua, app(name), tmp_path)
        assert status in ARGO_CD_HEALTH
