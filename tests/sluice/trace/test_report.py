"""The three renderings of a trace and the exit code, on hand-built traces (no services needed)."""

from __future__ import annotations

import json

import pytest

from sluice.errors import SluiceError
from sluice.trace import report
from sluice.trace.hops import HOP_NAMES, Trace, exit_code, fail, ok, skip, unreachable

COMMIT = "a" * 40


def make(*hops) -> Trace:
    t = Trace(model="m", env="staging", ref="origin/main", commit=COMMIT, version="3")
    t.hops = list(hops)
    return t


def clean() -> Trace:
    return make(*(ok(name, f"{name} agrees", detail=name) for name in HOP_NAMES))


def test_exit_codes_rank_a_disagreement_above_a_gap() -> None:
    assert exit_code([clean()]) == 0
    gap = make(*(ok(n, "fine") for n in HOP_NAMES[:5]), unreachable("image", "registry down"))
    assert exit_code([gap]) == 2
    both = make(fail("overlay", "hand edit"), *(ok(n, "fine") for n in HOP_NAMES[1:5]), gap.hops[-1])
    assert exit_code([both]) == 1 and exit_code([clean(), gap]) == 2
    assert exit_code([make(*(skip(n, "not here") for n in HOP_NAMES))]) == 0


def test_text_is_one_line_per_hop_and_facts_only_when_verbose() -> None:
    t = make(
        ok("overlay", "v3 at origin/main", last_change={"sha": COMMIT, "trailers": {}}),
        *(ok(n, "fine") for n in HOP_NAMES[1:4]),
        fail("data", "snapshot changed"),
        ok("image", "signed", attempts=[]),
    )
    text = report.to_text([t])
    assert text.splitlines() == [
        f"trace m v3 in staging at origin/main ({COMMIT[:12]})",
        "  ✔ overlay   v3 at origin/main",
        "  ✔ version   fine",
        "  ✔ evidence  fine",
        "  ✔ code      fine",
        "  ✘ data      snapshot changed",
        "  ✔ image     signed",
        "  => disagrees: data",
    ]
    verbose = report.to_text([t], verbose=True)
    assert f"      last_change:\n        sha: {COMMIT}\n" in verbose and "trailers" not in verbose


def test_json_is_validated_against_the_shipped_schema() -> None:
    doc = json.loads(report.to_json([clean()]))
    assert doc["schema_version"] == report.SCHEMA_VERSION and doc["traces"][0]["verdict"] == "agrees"
    broken = report.document([make(*clean().hops[:5])])  # a hop missing: not a trace the schema accepts
    with pytest.raises(SluiceError, match=r"trace\.schema\.json at traces/0/hops"):
        report.validate(broken)


def test_markdown_escapes_table_cells() -> None:
    t = make(fail("overlay", "image a|b -> c"), *(ok(n, "fine") for n in HOP_NAMES[1:]))
    md = report.to_markdown([t])
    assert "| ✘ | overlay | image a\\|b -> c |" in md and "**Verdict:** disagrees: overlay" in md
