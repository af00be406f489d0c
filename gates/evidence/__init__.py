"""Gate evidence: one JSON document per gate run, validated by a shipped schema, rendered for people.

Public helpers (used by the CLI, the pipeline components and promotion):
`write_evidence`, `load_evidence`, `validate_evidence`, `evidence_sha256`, `to_markdown`, `to_html`,
`new_evidence`, `finalize`, `summarize` (the one count of a document's findings).
"""

from gates.evidence.document import SCHEMA_V1, SCHEMA_VERSION, finalize, new_evidence
from gates.evidence.html import to_html
from gates.evidence.io import (
    evidence_bytes,
    evidence_sha256,
    load_evidence,
    validate_evidence,
    write_evidence,
)
from gates.evidence.markdown import to_markdown
from gates.evidence.summary import Summary, summarize

__all__ = [
    "SCHEMA_V1",
    "SCHEMA_VERSION",
    "Summary",
    "evidence_bytes",
    "evidence_sha256",
    "finalize",
    "load_evidence",
    "new_evidence",
    "summarize",
    "to_html",
    "to_markdown",
    "validate_evidence",
    "write_evidence",
]
