"""Content identity: the sha256 of exact bytes names data snapshots, contracts, policies, evidence.

Standard library only, so the run-key fast path can use it without importing pandas or MLflow.
"""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
