"""A trace for people (one line per hop, facts with --verbose), machines (JSON, with a shipped
schema) and incident tickets (Markdown)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError
from sluice.trace.hops import MARKS, Trace, exit_code

SCHEMA_VERSION = "sluice.dev/trace/v1"
SCHEMA_FILE = Path(__file__).with_name("trace.schema.json")
_WIDTH = max(len(n) for n in ("overlay", "version", "evidence", "code", "data", "image"))
# Facts too long for a line each: shown summarised.
_LISTS = {
    "attempts": ("created", "kind", "verdict", "sha256"),
    "promotions": ("date", "env", "version", "subject"),
}


def title(t: Trace) -> str:
    what = t.model or t.image or "?"
    where = f" in {t.env}" if t.env else ""
    version = f" v{t.version}" if t.version else ""
    return f"trace {what}{version}{where} at {t.ref} ({(t.commit or '?')[:12]})"


def verdict_line(t: Trace) -> str:
    if t.disagreements:
        return "disagrees: " + ", ".join(h.name for h in t.disagreements)
    if t.unreachable:
        return "incomplete: could not read " + ", ".join(h.name for h in t.unreachable)
    return "every verifiable hop agrees"


def _flat(value: Any) -> str:
    """A nested value on one line, as JSON (trailers, params), a plain value as itself."""
    return (
        json.dumps(value, ensure_ascii=False, default=str) if isinstance(value, dict | list) else str(value)
    )


def _fact_lines(name: str, value: Any) -> list[str]:
    if value in (None, "", [], {}):
        return []
    if name in _LISTS:
        keys = _LISTS[name]
        return [f"{name}:"] + [
            "  " + "  ".join(str(row.get(k, ""))[: 12 if k == "sha256" else 60] for k in keys)
            for row in value
        ]
    if isinstance(value, dict):
        return [f"{name}:"] + [f"  {k}: {_flat(v)}" for k, v in value.items() if v not in (None, "", [], {})]
    return [f"{name}: {value}"]


def to_text(traces: list[Trace], verbose: bool = False) -> str:
    lines = []
    for t in traces:
        lines.append(title(t))
        for hop in t.hops:
            lines.append(f"  {hop.mark} {hop.name.ljust(_WIDTH)}  {hop.reason}")
            if verbose:
                lines += [f"      {line}" for k, v in hop.facts.items() for line in _fact_lines(k, v)]
        lines.append(f"  => {verdict_line(t)}")
    return "\n".join(lines)


def document(traces: list[Trace]) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "exit_code": exit_code(traces),
        "traces": [t.as_dict() for t in traces],
    }


@lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))


def validate(doc: dict[str, Any]) -> None:
    """The document must match the shipped schema (a consumer can rely on it)."""
    error = next(iter(_validator().iter_errors(doc)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise SluiceError(f"trace document does not match {SCHEMA_FILE.name} at {where}: {error.message}")


def to_json(traces: list[Trace]) -> str:
    doc = document(traces)
    validate(doc)
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(traces: list[Trace]) -> str:
    """For an incident ticket: a table of hops, then the facts each hop found."""
    out = []
    for t in traces:
        out += [
            f"## {_cell(title(t))}",
            "",
            f"**Verdict:** {verdict_line(t)}",
            "",
            "| | hop | finding |",
            "|---|---|---|",
        ]
        out += [f"| {MARKS[h.status]} | {h.name} | {_cell(h.reason)} |" for h in t.hops]
        for hop in t.hops:
            facts = [line for k, v in hop.facts.items() for line in _fact_lines(k, v)]
            if facts:
                out += [
                    "",
                    f"<details><summary>{hop.name}</summary>",
                    "",
                    "```",
                    *facts,
                    "```",
                    "",
                    "</details>",
                ]
        out.append("")
    return "\n".join(out)
