"""What an exported graph expects and where it lives in an MLflow model directory.

Shared by the exporter (trainer side, imports skl2onnx) and the runtime (server side, imports
only onnxruntime): the signature travels inside the ONNX file's metadata, so `model.onnx` is
self-describing and the server needs nothing else from the training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sluice.errors import SluiceError

ONNX_FILENAME = "model.onnx"
FLAVOR = "onnx"  # mlflow.onnx's flavor name: its loader reads this entry unchanged
METADATA_KEY = "sluice.serving"
KINDS = ("numeric", "boolean", "categorical")
# Graph inputs: one float64 [N, k] block of the numeric and boolean columns (in normalize_frame's
# order), one string [N, m] block of the categories. Two inputs, not one per column: the decoder
# then builds two arrays per request instead of ~20 (measured ~50 µs less per request).
GRAPH_INPUTS = (("numeric", ("numeric", "boolean")), ("categorical", ("categorical",)))


class ExportError(SluiceError):
    """The model has no fast serving path; the message is the one-line reason the gate records."""


@dataclass(frozen=True)
class Signature:
    """Feature columns in graph-input order, each with its kind; the classes; the estimator."""

    columns: tuple[tuple[str, str], ...]
    classes: tuple[int, ...]
    estimator: str

    def to_json(self) -> str:
        return json.dumps(
            {
                "columns": [list(c) for c in self.columns],
                "classes": list(self.classes),
                "estimator": self.estimator,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Signature:
        doc = json.loads(text)
        return cls(tuple((n, k) for n, k in doc["columns"]), tuple(doc["classes"]), doc["estimator"])

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.columns]

    def graph_inputs(self) -> list[tuple[str, list[str]]]:
        """(graph input name, its columns) for each non-empty block of GRAPH_INPUTS."""
        out = []
        for name, kinds in GRAPH_INPUTS:
            columns = [col for col, kind in self.columns if kind in kinds]
            if columns:
                out.append((name, columns))
        return out
