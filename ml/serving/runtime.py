"""Load a model's ONNX flavor and score decoded requests with onnxruntime: no pandas per request.

`OnnxModel.predict_columns` turns column lists into the graph's two inputs (`decoding.Decoder`)
and returns labels (int64 [N]) and probabilities (float64 [N, classes]). onnxruntime runs
single-threaded: one row is microseconds of arithmetic, and thread hand-offs would cost more
than they save on a 2-core machine shared with the HTTP loop. Importing this module pulls in
numpy and onnxruntime only (the server's start-up is ~2 s, MLflow's app ~12 s).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ml.serving.decoding import Decoder
from ml.serving.signature import FLAVOR, METADATA_KEY, ExportError, Signature


class OnnxModel:
    """One exported model: its onnxruntime session and the signature that decodes its inputs."""

    def __init__(self, onnx_bytes: bytes, source: str = "the ONNX model") -> None:
        import onnxruntime as ort  # not `onnx`: the server never needs protobuf's Python side

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        try:
            self.session = ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own error types; one line for the gate
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise ExportError(f"onnxruntime cannot load {source}: {first}") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if METADATA_KEY not in meta:
            raise ExportError(f"{source} was not exported by ml.serving (no {METADATA_KEY} metadata)")
        self.signature = Signature.from_json(meta[METADATA_KEY])
        self.output_names = [o.name for o in self.session.get_outputs()]
        self.classes = np.asarray(self.signature.classes, dtype=np.int64)
        self.decode = Decoder(self.signature)

    @classmethod
    def load(cls, model_dir: str | Path) -> OnnxModel:
        """Load from an MLflow model directory with the `onnx` flavor (see ml.serving.export)."""
        import yaml

        model_dir = Path(model_dir)
        try:
            flavors = yaml.safe_load((model_dir / "MLmodel").read_text())["flavors"]
        except (OSError, KeyError, TypeError, yaml.YAMLError) as exc:
            raise ExportError(f"{model_dir} is not a readable MLflow model directory: {exc}") from None
        data = (flavors.get(FLAVOR) or {}).get("data")
        if not data:
            raise ExportError(
                f"{model_dir} has no {FLAVOR} flavor (no fast serving path); "
                f"add it with: python -m ml.serving export {model_dir}"
            )
        path = model_dir / data
        try:
            return cls(path.read_bytes(), source=str(path))
        except OSError as exc:
            raise ExportError(f"cannot read {path}: {exc.strerror}") from None

    @property
    def columns(self) -> list[str]:
        return self.signature.names

    def predict(self, feeds: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        label, proba = self.session.run(self.output_names, feeds)
        return np.asarray(label, dtype=np.int64).ravel(), np.asarray(proba, dtype=np.float64)

    def predict_columns(self, columns: dict[str, list], rows: int) -> tuple[np.ndarray, np.ndarray]:
        """Labels and probabilities for column lists of JSON values (RequestError on a bad value)."""
        return self.predict(self.decode(columns, rows))
