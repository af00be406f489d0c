"""KFP hands artifacts over as directories; these find the one file a step wrote into each."""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SluiceError


def only_file(directory: str | Path, pattern: str = "*") -> Path:
    """The single file inside a directory-shaped artifact (its name keeps the original suffix)."""
    found = sorted(p for p in Path(directory).glob(pattern) if p.is_file())
    if len(found) != 1:
        raise SluiceError(f"expected one {pattern} file in artifact {directory}, found {len(found)}")
    return found[0]


def evidence_json(evidence_dir: str | Path) -> Path:
    """The evidence document a gate step wrote (its .md and .html lie beside it)."""
    return only_file(evidence_dir, "*.json")
