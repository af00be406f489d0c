"""Read one of Sluice's own YAML documents (a data contract, a gate policy) with one-line errors.

Both are validated by a shipped JSON Schema after this; here only "is it there, is it YAML, is it
a mapping", worded the same way for every kind of file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import jsonschema
import yaml

from sluice.errors import SluiceError
from sluice.paths import require_file


def load_yaml_mapping(path: Path, what: str) -> tuple[dict, str]:
    """Return (document, sha256 of its bytes); SluiceError naming `what` and the line otherwise."""
    raw = require_file(path, what).read_bytes()
    try:
        doc = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SluiceError(f"{what} {path} is not valid YAML{where}: {problem}") from exc
    if not isinstance(doc, dict):
        raise SluiceError(f"{what} {path} must be a YAML mapping, got {type(doc).__name__}")
    return doc, hashlib.sha256(raw).hexdigest()


def first_schema_error(doc: dict, schema: dict, path: Path, what: str) -> None:
    """Raise the first JSON Schema violation (in document order) as a one-line SluiceError."""
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(doc), key=lambda e: list(e.absolute_path)
    )
    if errors:
        where = "/".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise SluiceError(f"{what} {path} does not match its schema at {where}: {errors[0].message}")
