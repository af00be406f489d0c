"""The InferenceService health check, run by a real Lua interpreter against KServe status objects.

Argo CD evaluates health scripts with gopher-lua (Lua 5.1): the live object is the global `obj`,
the script's return value is a table with `status` and `message`, and the os/io libraries are not
available. The harness reproduces that contract (no os, io, require or file loading once the
script is read), so a script that leans on anything Argo CD does not offer fails here. The
sample objects are KServe-shaped (validated against KServe's own CRD schema first).

Needs a Lua interpreter: Debian's `lua5.4` (or lua5.1/luajit); skipped with a reason otherwise.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.manifests.argocd.conftest import ARGOCD_DIR, DATA

SCRIPT = ARGOCD_DIR / "health" / "inferenceservice.lua"
SAMPLES = DATA / "inferenceservice"
ARGO_CD_HEALTH = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}

HARNESS = r"""
local script_path, object_path = arg[1], arg[2]
local read = function(path)
  local f = assert(io.open(path, "r")); local text = f:read("*a"); f:close(); return text
end
local script, object_source = read(script_path), read(object_path)
local write = io.write
local compile = loadstring or load
obj = assert(compile(object_source))()
-- What Argo CD's sandbox lacks must be missing here too.
os, io, require, dofile, loadfile, package = nil, nil, nil, nil, nil, nil
local hs = assert(compile(script))()
write(tostring(hs.status), "\n", tostring(hs.message), "\n")
"""


def lua_literal(value: Any) -> str:
    """Python data → a Lua table constructor, the way Argo CD hands JSON to the script."""
    if isinstance(value, dict):
        return (
            "{"
            + ",".join(f"[{lua_literal(str(k))}]={lua_literal(v)}" for k, v in value.items() if v is not None)
            + "}"
        )
    if isinstance(value, list):
        return "{" + ",".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    safe = " .,:;_-/()'@#=+*%<>"
    escaped = "".join(
        chr(b) if b < 128 and (chr(b).isalnum() or chr(b) in safe) else f"\\{b:03d}"
        for b in str(value).encode()
    )
    return f'"{escaped}"'


def run_health(lua: str, obj: dict[str, Any], tmp_path: Path) -> tuple[str, str]:
    harness, data = tmp_path / "harness.lua", tmp_path / "object.lua"
    harness.write_text(HARNESS)
    data.write_text("return " + lua_literal(obj))
    out = subprocess.run(
        [lua, str(harness), str(SCRIPT), str(data)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stderr
    status, message = out.stdout.rstrip("\n").split("\n", 1)
    return status, message


CASES = {
    "healthy": ("Healthy", "Ready at http://credit-default-models-staging.example.com"),
    "degraded": (
        "Degraded",
        'Ready is False (RevisionFailed): Revision "credit-default-predictor-00004" failed',
    ),
    "degraded-without-reason": ("Degraded", "Ready is False"),
    "progressing-unknown": ("Progressing", "Ready is Unknown (RevisionMissing): Configuration"),
    "no-status": ("Progressing", "Waiting for KServe to report status"),
    "no-ready-condition": ("Progressing", "KServe has not reported a Ready condition yet"),
    "stale-generation": (
        "Progressing",
        "KServe has not yet reconciled generation 6 (status is for generation 5)",
    ),
    "stopped": ("Suspended", "Stopped (serving.kserve.io/stop)"),
    "deleting": ("Progressing", "Being deleted"),
}


def test_every_sample_has_an_expectation() -> None:
    assert {p.stem for p in SAMPLES.glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("sample", sorted(CASES))
def test_health_of_sample(sample: str, lua: str, validate, tmp_path: Path) -> None:
    obj = yaml.safe_load((SAMPLES / f"{sample}.yaml").read_text())
    assert validate(obj) == [], "sample is not shaped like a real InferenceService"
    status, message = run_health(lua, obj, tmp_path)
    expected_status, expected_message = CASES[sample]
    assert status == expected_status, message
    assert message.startswith(expected_message)


def test_healthy_needs_ready_true_not_just_a_ready_predictor(lua: str, tmp_path: Path) -> None:
    obj = yaml.safe_load((SAMPLES / "healthy.yaml").read_text())
    for condition in obj["status"]["conditions"]:
        if condition["type"] == "Ready":
            condition["status"] = "False"
            condition["reason"] = "IngressNotConfigured"
    status, message = run_health(lua, obj, tmp_path)
    assert (status, message) == ("Degraded", "Ready is False (IngressNotConfigured)")


def test_every_answer_is_an_argo_cd_health_status(lua: str, tmp_path: Path) -> None:
    odd = {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}
    status, _ = run_health(lua, odd, tmp_path)
    assert status in ARGO_CD_HEALTH
