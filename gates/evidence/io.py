"""Writing and reading evidence files: validated against the schema, written atomically.

The JSON is the record (its sha256 is the evidence digest tagged on the model version and quoted
in promotion PRs); Markdown and HTML are renderings of it. All three are written to temporary
files first and renamed into place, JSON last, so a reader never sees a half-written set and a
JSON file present means its renderings are too.

Each document is validated by the schema of its own `schema_version` (v1 documents written
before v2 stay readable), and a v2 document must also add up: its `passed`, `verdict` and
`counts` must be what its checks say.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from functools import cache
from pathlib import Path

import jsonschema

from gates.evidence.document import SCHEMA_V1, SCHEMA_VERSION
from gates.evidence.summary import summarize
from sluice.errors import SluiceError

SCHEMA_PATH = Path(__file__).with_name("evidence.schema.json")
SCHEMA_PATHS = {
    SCHEMA_VERSION: SCHEMA_PATH,
    SCHEMA_V1: Path(__file__).with_name("evidence-v1.schema.json"),
}


@cache
def evidence_schema(version: str = SCHEMA_VERSION) -> dict:
    return json.loads(SCHEMA_PATHS[version].read_text())


def validate_evidence(evidence: dict, source: str = "evidence") -> None:
    """Raise SluiceError naming the first place where `evidence` breaks its schema or does not add up."""
    version = evidence.get("schema_version") if isinstance(evidence, dict) else None
    if version not in SCHEMA_PATHS:
        known = ", ".join(sorted(SCHEMA_PATHS))
        raise SluiceError(
            f"{source} does not match the evidence schema at schema_version: "
            f"{version!r} is not one of {known}"
        )
    validator = jsonschema.Draft202012Validator(evidence_schema(version))
    errors = sorted(validator.iter_errors(evidence), key=lambda e: list(e.absolute_path))
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise SluiceError(f"{source} does not match the evidence schema at {where}: {errors[0].message}")
    if version != SCHEMA_V1:
        _check_adds_up(evidence, source)


def _check_adds_up(evidence: dict, source: str) -> None:
    """The stored verdict and counts must be the ones its checks give (no hand-edited verdicts)."""
    summary = summarize(evidence)
    stored = {"passed": evidence["passed"], "verdict": evidence["verdict"], "counts": evidence["counts"]}
    derived = {"passed": summary.passed, "verdict": summary.verdict, "counts": summary.counts}
    for key, value in derived.items():
        if stored[key] != value:
            raise SluiceError(
                f"{source}: its {key} does not add up: it says {json.dumps(stored[key])}, "
                f"its checks give {json.dumps(value)}"
            )


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
