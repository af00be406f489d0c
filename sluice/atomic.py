"""Files replaced in one step: a reader (or a run killed mid-write) sees the old bytes or the new.

Every file Sluice writes that another process may read (records, overlays, keys, evidence, demo
data, schema caches) goes through here: a temporary file in the same directory, flushed and
fsynced, then `os.replace`. The temporary file never outlives a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def replacing(path: str | Path, mode: int = 0o644) -> Iterator[IO[bytes]]:
    """Write the body of the `with` into a temporary file that replaces `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        # mkstemp creates 0600; shared data (demo files, overlays) must stay readable to others.
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | Path, data: bytes, mode: int = 0o644) -> Path:
    with replacing(path, mode) as handle:
        handle.write(data)
    return Path(path)


def write_text(path: str | Path, text: str, mode: int = 0o644) -> Path:
    """UTF-8 with '\\n' line ends whatever the platform: committed files must hash the same."""
    return write_bytes(path, text.encode("utf-8"), mode)


def write_json(path: str | Path, doc: Any) -> Path:
    return write_text(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
