"""Select step: apply the selection rule (`ml.training.selection`) and pass the winner's model on."""

from __future__ import annotations

import json
import shutil

from ml.components.markers import step
from ml.training.selection import choose, rank
from sluice.errors import SluiceError


def select(
    summaries: list[str], model_dirs: list[tuple[str, str]], best_dir: str, tolerance: float = 0.0
) -> tuple[dict, list[dict]]:
    """Pick the winner; `model_dirs` pairs each model artifact's candidate name with its path."""
    with step("select") as report:
        parsed = rank([json.loads(s) for s in summaries])
        if not parsed:
            raise SluiceError("no candidate produced a model")
        best = choose(parsed, tolerance)
        paths = dict(model_dirs)
        if best["name"] not in paths:
            raise SluiceError(f"model artifact for candidate {best['name']!r} is missing")
        shutil.copytree(paths[best["name"]], best_dir, dirs_exist_ok=True)
        report.update(
            best=best["name"],
            metrics={k: round(best["metrics"][k], 4) for k in ("accuracy", "f1", "roc_auc")},
        )
    return best, parsed
