"""Fast serving of Sluice's registered models: ONNX export, onnxruntime scoring, a bare ASGI app.

- `ml.serving.export` (+ `converters`): the fitted pipeline after `normalize_frame` -> ONNX,
  logged as an `onnx` flavor of the same MLflow model (trainer side: imports skl2onnx).
- `ml.serving.runtime` (+ `decoding`, `signature`): request values -> graph inputs
  (`normalize_frame`'s rules) -> onnxruntime. No pandas, no scikit-learn, no MLflow.
- `ml.serving.protocol` + `ml.serving.app`: MLflow's `/invocations` and KServe's Open Inference
  Protocol v2 over one ASGI callable; `python -m ml.serving` runs it under uvicorn.
"""
