"""A problem found inside one object, before we know which file and line it will be shown at.

The same object is checked twice — as written in its file and as rendered by Kustomize — so
checks report a field path, and the caller turns it into `path:line` (or the kustomization file).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    rule: str
    keys: tuple[Any, ...]
    message: str
    severity: str = "error"


def dotted(keys: Iterable[Any]) -> str:
    """`spec.template.spec.containers[0].image`: the way kubectl names a field."""
    out = ""
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        else:
            out += f".{key}" if out else str(key)
    return out or "(document)"


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
