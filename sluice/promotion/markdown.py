"""The production pull request's body: what changes, why it is safe, and what to do after merging.

The approver reads this instead of digging through MLflow, so it carries the whole evidence
(rendered by the gates' own Markdown renderer), the exact overlay diff and the digests.
"""

from __future__ import annotations

from typing import Any

from gates.evidence import to_markdown


def pull_request_body(
    *,
    model: str,
    version: str,
    env: str,
    model_uri: str,
    image: str,
    evidence_sha256: str,
    data_sha256: str | None,
    mlflow_url: str | None,
    evidence_url: str | None,
    diff: str,
    evidence: dict[str, Any],
    finalize_command: str,
) -> str:
    rows = [
        ("Model", f"`{model}` version **{version}**"),
        ("Environment", env),
        ("Model URI (immutable)", f"`{model_uri}`"),
        ("Serving image", f"`{image}`"),
        ("Evidence sha256", f"`{evidence_sha256}`"),
        ("Training data sha256", f"`{data_sha256}`" if data_sha256 else "not recorded"),
    ]
    if mlflow_url:
        rows.append(("MLflow", mlflow_url))
    if evidence_url:
        rows.append(("Evidence report", evidence_url))
    parts = [
        f"## Promote `{model}` v{version} to {env}",
        "",
        "| | |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in rows],
        "",
        "### Overlay change",
        "",
        "```diff",
        diff.rstrip("\n"),
        "```",
        "",
        to_markdown(evidence).rstrip("\n"),
        "",
        "### After merging",
        "",
        "Sync the production Application in Argo CD, then record the new champion in MLflow:",
        "",
        "```bash",
        finalize_command,
        "```",
        "",
    ]
    return "\n".join(parts)
