"""A run's identity, cheap enough to compute before importing anything heavy.

The run key hashes everything that decides what a training run produces: the bytes of the data,
reference and contract, the code (git commit plus a fingerprint of the installed `ml` and
`gates` sources, because a dirty tree keeps its commit), the policy and the parameters. The
same key means the same model, so `sluice run` can answer an unchanged re-run from its record
without starting the pipeline, and registration can refuse to create a second version.

Only the standard library is imported here: this module sits on the fast path.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

PACKAGE_DIRS = ("ml", "gates")
SOURCE_SUFFIXES = frozenset({".py", ".json", ".yaml", ".yml", ".html"})
# Delivery tooling a training run never executes: editing a linter must not retrain a model.
# Everything else in `gates` (the gates, their checks, evidence and policies) is fingerprinted,
# including modules added later.
NOT_TRAINING_CODE = frozenset(
    {
        "gates/lint",
        "gates/promotion",
        "gates/supply_chain",
        "gates/argocd_api.py",
        "gates/cli.py",
        "gates/cli_gate.py",
    }
)


def code_fingerprint(root: Path | None = None) -> str:
    """sha256 over the training-relevant source files of `ml` and `gates` (path + bytes, sorted)."""
    root = root or Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for package in PACKAGE_DIRS:
        base = root / package
        files = sorted(
            p
            for p in base.rglob("*")
            if p.suffix in SOURCE_SUFFIXES
            and "__pycache__" not in p.parts
            and p.is_file()
            and not _excluded(p.relative_to(root).as_posix())
        )
        for path in files:
            digest.update(path.relative_to(root).as_posix().encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _excluded(relative: str) -> bool:
    return any(relative == skip or relative.startswith(skip + "/") for skip in NOT_TRAINING_CODE)


def run_key(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def record_path(home_root: Path, key: str) -> Path:
    return home_root / "runs" / f"{key}.json"


def read_record(home_root: Path, key: str) -> dict | None:
    try:
        return json.loads(record_path(home_root, key).read_text())
    except (OSError, ValueError):
        return None


def registry_has_version(tracking_uri: str, model_name: str, version: str, key: str) -> bool | None:
    """Does the registry still hold `version` tagged with this run key? None = cannot tell cheaply.

    SQLite is read directly and an HTTP server through its REST API, so the fast path never
    imports MLflow (about 1.5 s); any other store falls back to the full, idempotent run.
    """
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))  # sqlite:////abs → /abs; sqlite:///rel → rel
        if not db.is_file():
            return False
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                stage = conn.execute(
                    "SELECT current_stage FROM model_versions WHERE name = ? AND version = ?",
                    (model_name, int(version)),
                ).fetchone()
                tag = conn.execute(
                    "SELECT value FROM model_version_tags"
                    " WHERE name = ? AND version = ? AND key = 'sluice.run_key'",
                    (model_name, int(version)),
                ).fetchone()
        except sqlite3.Error:
            return None
        return bool(stage) and stage[0] != "Deleted_Internal" and bool(tag) and tag[0] == key
    if tracking_uri.startswith(("http://", "https://")):
        query = urllib.parse.urlencode({"name": model_name, "version": version})
        url = f"{tracking_uri.rstrip('/')}/api/2.0/mlflow/model-versions/get?{query}"
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - the user's tracking server
                body = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return False if exc.code == 404 else None
        except (urllib.error.URLError, OSError, ValueError):
            return None
        tags = {t["key"]: t.get("value") for t in body.get("model_version", {}).get("tags", [])}
        return tags.get("sluice.run_key") == key
    return None
