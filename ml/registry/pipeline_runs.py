"""How a KFP pipeline run leaves its mark in MLflow, so `sluice submit --wait` can find what it did.

The run that creates a version tags it `sluice.pipeline_run_id`. A run that reuses a version
(same run key) or is refused by the model gate leaves `sluice.pipeline_run.<id>` = reused |
rejected behind, on the version or on the MLflow run respectively; one that trains nothing
because of its data gate leaves data-blocked | no-op on the run holding that data-gate attempt.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from sluice import tags

REUSED = "reused"
REJECTED = "rejected"
DATA_BLOCKED = "data-blocked"  # the data gate refused the snapshot
NO_OP = "no-op"  # the data gate passed without drift and training was wanted only on drift
_TAGGABLE_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def pipeline_run_tag(pipeline_run_id: str) -> str | None:
    """The per-run tag key, or None when the id cannot be a tag key (e.g. an unresolved placeholder)."""
    if not _TAGGABLE_RUN_ID.match(pipeline_run_id or ""):
        return None
    return tags.PIPELINE_RUN_PREFIX + pipeline_run_id


def mark_pipeline_run(set_tag: Callable[..., None], target: tuple, pipeline_run_id: str, what: str) -> None:
    key = pipeline_run_tag(pipeline_run_id)
    if key is not None:
        set_tag(*target, key, what)
