"""A fitted model on disk: skops, never pickle, and only types we trust come back out.

Loading a registry model must not run arbitrary code. skops refuses any type not on the trusted
list, so a tampered artifact cannot smuggle in callables; the few non-sklearn types our pipeline
holds are listed here, once, for saving, loading and MLflow's `skops_trusted_types`.
"""

from __future__ import annotations

from pathlib import Path

from sluice.errors import SluiceError

MODEL_FILENAME = "model.skops"
SKOPS_TRUSTED_TYPES = (
    "ml.training.features.normalize_frame",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
)


def save_model(model, out_dir: str | Path) -> Path:
    import skops.io as sio

    payload = sio.dumps(model)
    untrusted = set(sio.get_untrusted_types(data=payload)) - set(SKOPS_TRUSTED_TYPES)
    if untrusted:
        raise SluiceError(f"model holds types outside the trusted list: {', '.join(sorted(untrusted))}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / MODEL_FILENAME
    path.write_bytes(payload)
    return path


def load_model(model_dir: str | Path):
    import skops.io as sio

    return sio.load(Path(model_dir) / MODEL_FILENAME, trusted=list(SKOPS_TRUSTED_TYPES))
