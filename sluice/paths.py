"""Where things live: the local Sluice home, the repository, and upstream shared data.

One place decides these paths so that `sluice run`, the gates and promotion agree on where the
MLflow store, the pipeline root and the evidence of a laptop run are.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from sluice.errors import SluiceError

DEFAULT_HOME = ".sluice"


@dataclass(frozen=True)
class Home:
    """The embedded-defaults workspace of a laptop run (git-ignored)."""

    root: Path

    @property
    def tracking_uri(self) -> str:
        return f"sqlite:///{self.root / 'mlflow.db'}"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def pipeline_root(self) -> Path:
        return self.root / "pipeline-root"

    @property
    def evidence(self) -> Path:
        return self.root / "evidence"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def ensure(self) -> Home:
        for path in (self.root, self.artifacts, self.pipeline_root, self.evidence, self.data):
            path.mkdir(parents=True, exist_ok=True)
        return self


def require_file(path: str | Path, role: str) -> Path:
    """`path` as a Path if it is a readable regular file; else SluiceError saying what it is instead.

    "data file not found" for a directory sends people looking for a typo; name what is there.
    """
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        raise SluiceError(f"{role} {path} is a directory, not a file")
    if path.exists():
        raise SluiceError(f"{role} {path} is not a regular file")
    raise SluiceError(f"{role} not found: {path}")


def home(path: str | Path | None = None) -> Home:
    return Home(Path(path or os.environ.get("SLUICE_HOME", DEFAULT_HOME)).resolve())


def tracking_uri(home_dir: str | Path | None = None, override: str | None = None) -> str:
    """An explicit URI, else $MLFLOW_TRACKING_URI, else SQLite inside the Sluice home."""
    return override or os.environ.get("MLFLOW_TRACKING_URI") or home(home_dir).tracking_uri


def shared_dir() -> Path:
    """Upstream read-only data (CRDs, cosign fixtures): $SLUICE_SHARED_DIR or ../shared."""
    env = os.environ.get("SLUICE_SHARED_DIR")
    if env:
        return Path(env).resolve()
    return (Path(__file__).resolve().parent.parent.parent / "shared").resolve()
