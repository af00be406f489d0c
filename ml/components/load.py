"""Load step: bring the snapshot, its reference and its contract in as artifacts, checked by sha256."""

from __future__ import annotations

import shutil
from pathlib import Path

from ml.components.markers import step
from sluice.digest import sha256_file
from sluice.errors import SluiceError
from sluice.paths import require_file


def load_inputs(sources: dict[str, tuple[str, str]], outputs: dict[str, str]) -> dict[str, dict[str, str]]:
    """Copy each source file into its artifact directory after checking its sha256.

    The sha256 was computed by whoever started the run and is part of the cache key; checking it
    here means a file edited after the run started fails loudly instead of training on bytes
    that no longer match the recorded identity.
    """
    with step("load") as report:
        meta: dict[str, dict[str, str]] = {}
        for role, (uri, expected) in sources.items():
            src = require_file(Path(uri.removeprefix("file://")), f"{role} file")
            actual = sha256_file(src)
            if expected and actual != expected:
                raise SluiceError(f"{role} file {src} changed since the run started (sha256 {actual[:12]}…)")
            out_dir = Path(outputs[role])
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out_dir / src.name)
            meta[role] = {"sha256": actual, "source": str(src), "filename": src.name}
        report["files"] = {role: m["filename"] for role, m in meta.items()}
    return meta
