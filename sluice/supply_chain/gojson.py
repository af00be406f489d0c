"""JSON bytes exactly as Go's encoding/json.Marshal writes them.

cosign serialises everything it pushes (payload, image config, manifest) with Go's json.Marshal,
so byte-identical output needs the same bytes: no spaces, raw UTF-8, keys in the order the caller
built them (Go writes struct fields in declaration order and map keys sorted, so callers build
dicts in that order or pass `sort_keys` for maps), and Go's HTML-safe escapes for `<`, `>`, `&`
and the line separators U+2028/U+2029, which Python's json module leaves alone.
"""

from __future__ import annotations

import json
from typing import Any

_GO_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def go_dumps(value: Any, *, sort_keys: bool = False) -> bytes:
    """Compact JSON with Go's escaping.

    The replacements are safe on the whole document because `<`, `>`, `&`, U+2028 and U+2029 can
    only occur inside JSON strings. Control characters come out as Go >= 1.22 writes them (`\\n`,
    `\\t`, ... otherwise `\\u00XX`). Floats are not re-formatted the Go way (1e-07 vs 1e-7): cosign
    documents hold strings and integers.
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, sort_keys=sort_keys)
    for char, escaped in _GO_ESCAPES.items():
        text = text.replace(char, escaped)
    return text.encode("utf-8")


def sorted_maps(value: Any) -> Any:
    """`value` with every dict's keys sorted, as Go marshals a map[string]interface{} read from JSON."""
    if isinstance(value, dict):
        return {key: sorted_maps(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [sorted_maps(item) for item in value]
    return value
