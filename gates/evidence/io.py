"""Writing and reading evidence files: validated against the schema, written atomically.

The JSON is the record (its sha256 is the evidence digest tagged on the model version and quoted
in promotion PRs); Markdown and HTML are renderings of it. All three are written to temporary
files first and renamed into place, JSON last, so a reader never sees a half-written set and a
JSON file present means its renderings are too.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path

import jsonschema

from sluice.errors import SluiceError

SCHEMA_PATH = Path(__file__).with_name("evidence.schema.json")


@cache
def evidence_schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def validate_evidence(evidence: dict, source: str = "evidence") -> None:
    """Raise SluiceError naming the first place where `evidence` breaks the schema."""
    validator = jsonschema.Draft202012Validator(evidence_schema())
    errors = sorted(validator.iter_errors(evidence), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise SluiceError(f"{source} does not match the evidence schema at {where}: {errors[0].message}")


def evidence_bytes(evidence: dict) -> bytes:
    """The canonical bytes written for a document (so the digest can be predicted and re-checked)."""
    try:
        return (json.dumps(evidence, indent=2, ensure_ascii=False, allow_nan=False) + "\n").encode()
    except ValueError as exc:
        raise SluiceError(f"evidence is not plain JSON: {exc}") from exc


def _atomic_temp(directory: Path, name: str, data: bytes) -> Path:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp makes 0600; evidence is meant to be read by others
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    return Path(tmp)


def write_evidence(evidence: dict, out_dir: str | Path, stem: str) -> Path:
    """Validate, then write `<stem>.json`, `.md` and `.html` into out_dir; return the JSON path."""
    from gates.evidence.html import to_html
    from gates.evidence.markdown import to_markdown

    validate_evidence(evidence)
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SluiceError(f"cannot create evidence directory {out}: {exc.strerror}") from exc
    payloads = [
        (f"{stem}.md", to_markdown(evidence).encode()),
        (f"{stem}.html", to_html(evidence).encode()),
        (f"{stem}.json", evidence_bytes(evidence)),
    ]
    temps: list[tuple[Path, Path]] = []
    try:
        for name, data in payloads:
            temps.append((_atomic_temp(out, name, data), out / name))
        for tmp, final in temps:
            os.replace(tmp, final)
    except OSError as exc:
        for tmp, _ in temps:
            tmp.unlink(missing_ok=True)
        raise SluiceError(f"cannot write evidence into {out}: {exc.strerror or exc}") from exc
    return out / f"{stem}.json"


def load_evidence(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise SluiceError(f"evidence not found: {path}")
    try:
        doc = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SluiceError(f"evidence {path} is not valid JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise SluiceError(f"evidence {path} must be a JSON object")
    validate_evidence(doc, source=f"evidence {path}")
    return doc


def evidence_sha256(path: str | Path) -> str:
    """The evidence digest: sha256 of the exact JSON bytes on disk."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise SluiceError(f"cannot read evidence {path}: {exc.strerror}") from exc
