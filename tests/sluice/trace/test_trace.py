"""`sluice trace` end to end: a real MLflow server on PostgreSQL, real git remotes, real signatures
in the loopback docker-registry, and one ✘ case per way the chain can break."""

from __future__ import annotations

import json
import re

import pytest

from tests.sluice.trace.conftest import World

pytestmark = pytest.mark.slow

HOPS = ("overlay", "version", "evidence", "code", "data", "image")


def hop_lines(out: str) -> dict[str, tuple[str, str]]:
    """hop name -> (mark, reason) from the text output."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^  (\S) (\w+)\s+(.*)$", line)
        if m and m.group(2) in HOPS:
            found[m.group(2)] = (m.group(1), m.group(3))
    return found


def test_a_clean_trace_agrees_at_every_hop(world: World, run_trace) -> None:
    code, out, err = run_trace("--model", world.model, "--env", "staging")
    assert code == 0, out + err
    hops = hop_lines(out)
    assert list(hops) == list(HOPS)
    assert {mark for mark, _ in hops.values()} == {"✔"}, out
    assert f"v{world.version} at origin/main, written by sluice" in hops["overlay"][1]
    assert f"run {world.run_id[:12]}" in hops["version"][1]
    assert "re-hashed and matches; passed" in hops["evidence"][1]
    assert f"commit {world.code_commit[:12]} is in this repository" in hops["code"][1]
    assert "pipeline IR same as this installation's" in hops["code"][1]
    assert "requirements.lock at the commit hashes to the recorded lock" in hops["code"][1]
    assert f"snapshot {world.data} still hashes to" in hops["data"][1]
    assert "signature verified by" in hops["image"][1]
    assert out.rstrip().endswith("=> every verifiable hop agrees")

