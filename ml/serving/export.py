"""Export a fitted Sluice pipeline to ONNX and log it as a second flavor of the same MLflow model.

Why ONNX: serving one row through scikit-learn costs ~10 ms (pandas in `normalize_frame`, the
ColumnTransformer's per-call validation, joblib for a forest); the same arithmetic as an
onnxruntime graph costs 40-130 µs. What is exported is everything AFTER `normalize_frame`: the
ColumnTransformer and the classifier, with two graph inputs (`signature.GRAPH_INPUTS`).
`normalize_frame` itself is a Python function no converter can see inside; what it does (numbers
to float64 with NaN, booleans to 0/1, missing categories to `__missing__`) is restated by the
request decoder (`ml.serving.decoding`), and the model gate's parity check proves on the whole
holdout that the served graph and the registered scikit-learn model agree.

The MLflow model directory keeps its `sklearn` and `python_function` flavors untouched (still a
valid scikit-learn model for `mlflow.sklearn.load_model` and `mlflow models serve`); `model.onnx`
is added next to `model.skops` with an `onnx` flavor entry in `mlflow.onnx`'s format, so
`mlflow.onnx.load_model(uri)` reads it too. Only the three classifiers `ml.training.candidates`
builds are exported (each covered by the parity tests); anything else raises `ExportError` with
a one-line reason, and the gate refuses the model rather than serve it by a path nobody measured.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np

from ml.serving.signature import FLAVOR, KINDS, METADATA_KEY, ONNX_FILENAME, ExportError, Signature

TARGET_OPSET = {"": 21, "ai.onnx.ml": 3}  # ml opset raised to 5 by converters.finish for trees
EXPORTABLE = ("LogisticRegression", "DecisionTreeClassifier", "RandomForestClassifier")


def _exportable_types() -> tuple[type, ...]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.tree import DecisionTreeClassifier

    return LogisticRegression, DecisionTreeClassifier, RandomForestClassifier


def split_pipeline(model: Any) -> tuple[dict[str, list[str]], Any, Any]:
    """(feature groups, ColumnTransformer, classifier) of a Sluice pipeline; ExportError otherwise.

    The expected shape is what `ml.training.candidates.build_model` builds:
    Pipeline[prepare=Pipeline[normalize=FunctionTransformer(normalize_frame), columns=CT], model].
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    from ml.training.features import normalize_frame

    try:
        prepare, estimator = (step for _, step in model.steps)
        normalize, columns = (step for _, step in prepare.steps)
    except (AttributeError, ValueError, TypeError):
        raise ExportError(
            f"{type(model).__name__} is not a Sluice pipeline (prepare[normalize_frame, columns] -> "
            "classifier): no fast serving path"
        ) from None
    if not isinstance(prepare, Pipeline) or getattr(normalize, "func", None) is not normalize_frame:
        raise ExportError(
            "the model's first step is not ml.training.features.normalize_frame: no fast serving path"
        )
    if not isinstance(columns, ColumnTransformer):
        raise ExportError(
            f"expected a ColumnTransformer after normalize_frame, found {type(columns).__name__}"
        )
    if type(estimator) not in _exportable_types():  # exact classes: a subclass may predict differently
        raise ExportError(
            f"no fast serving path for {type(estimator).__name__} (exportable: {', '.join(EXPORTABLE)})"
        )
    if not hasattr(estimator, "classes_") or np.asarray(estimator.classes_).dtype.kind not in "iub":
        raise ExportError(f"{type(estimator).__name__} must be fitted on integer class labels to be exported")
    groups = {kind: list((normalize.kw_args or {}).get(kind) or []) for kind in KINDS}
    return groups, columns, estimator


def signature_of(model: Any) -> Signature:
    groups, _, estimator = split_pipeline(model)
    # Graph-input order: numeric + boolean (one float64 block in normalize_frame), then categories.
    columns = [(n, "numeric") for n in groups["numeric"]] + [(n, "boolean") for n in groups["boolean"]]
    columns += [(n, "categorical") for n in groups["categorical"]]
    return Signature(tuple(columns), tuple(int(c) for c in estimator.classes_), type(estimator).__name__)


def _positional(columns: Any, signature: Signature) -> Any:
    """A shallow copy of the fitted ColumnTransformer selecting columns by position in the graph
    inputs instead of by name (skl2onnx maps positions across several inputs, names only to
    one-column inputs). The fitted sub-transformers are shared, never modified."""
    position = {name: i for i, (name, _) in enumerate(signature.columns)}
    positional = copy.copy(columns)
    transformers = []
    for name, transformer, selected in columns.transformers_:
        if transformer == "drop":
            continue
        try:
            transformers.append((name, transformer, [position[c] for c in selected]))
        except (KeyError, TypeError):
            raise ExportError(
                f"ColumnTransformer step {name!r} selects {selected!r}, not columns normalize_frame produces"
            ) from None
    positional.transformers_ = transformers
    return positional


def to_onnx(model: Any) -> Any:
    """The fitted pipeline after `normalize_frame` as an ONNX ModelProto (label, probabilities)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType
    from sklearn.pipeline import Pipeline

    from ml.serving.converters import custom_converters, finish

    signature = signature_of(model)
    _, columns, estimator = split_pipeline(model)
    types = {"numeric": DoubleTensorType, "categorical": StringTensorType}
    inputs = [(name, types[name]([None, len(cols)])) for name, cols in signature.graph_inputs()]
    conversions, shapes = custom_converters()
    try:
        onx = convert_sklearn(
            Pipeline([("columns", _positional(columns, signature)), ("model", estimator)]),
            initial_types=inputs,
            options={id(estimator): {"zipmap": False}},
            target_opset=TARGET_OPSET,
            custom_conversion_functions=conversions,
            custom_shape_calculators=shapes,
        )
        finish(onx)
    except ExportError:
        raise
    except Exception as exc:  # skl2onnx raises many types; the gate needs one line
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ExportError(f"ONNX export of {signature.estimator} failed: {first}") from exc
    entry = onx.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, signature.to_json()
    return onx


def write_flavor(model_dir: str | Path, onx: Any, mlflow_model: Any = None) -> Path:
    """Write `model.onnx` into an MLflow model directory and add the `onnx` flavor to its MLmodel.

    `mlflow_model` is the in-memory `mlflow.models.Model` while `Model.log` is saving (it may
    rewrite MLmodel from that object later, so the flavor must be on the object, not only in the
    file); None for a directory already on disk.
    """
    import onnx
    from mlflow.models import Model

    model_dir = Path(model_dir)
    mlmodel_path = model_dir / "MLmodel"
    if mlflow_model is None:
        if not mlmodel_path.is_file():
            raise ExportError(f"{model_dir} is not an MLflow model directory (no MLmodel file)")
        mlflow_model = Model.load(str(mlmodel_path))
    path = model_dir / ONNX_FILENAME
    path.write_bytes(onx.SerializeToString())
    mlflow_model.add_flavor(
        FLAVOR,
        onnx_version=onnx.__version__,
        data=ONNX_FILENAME,
        providers=["CPUExecutionProvider"],
        code=None,
    )
    mlflow_model.save(str(mlmodel_path))
    return path


class SklearnWithOnnx:
    """A flavor module for `mlflow.models.Model.log`: MLflow's sklearn flavor, plus `model.onnx`.

    `mlflow.sklearn.log_model` is `Model.log(flavor=mlflow.sklearn, ...)`; logging with this
    class instead gives the same artifact (MLmodel sklearn/python_function entries, model.skops,
    requirements, signature) with the ONNX graph and its flavor entry added: one upload, one
    LoggedModel, one registered version. The export runs first, so a model that cannot be
    exported fails before anything is written.
    """

    @staticmethod
    def save_model(path: str, sk_model: Any, mlflow_model: Any = None, **kwargs: Any) -> None:
        import mlflow.sklearn
        from mlflow.models import Model

        onx = to_onnx(sk_model)
        mlflow_model = mlflow_model if mlflow_model is not None else Model()
        mlflow.sklearn.save_model(sk_model, path, mlflow_model=mlflow_model, **kwargs)
        write_flavor(path, onx, mlflow_model)


def log_model(sk_model: Any, name: str, **kwargs: Any) -> Any:
    """`mlflow.sklearn.log_model` with the ONNX flavor added (same keyword arguments)."""
    from mlflow.models import Model

    return Model.log(artifact_path=None, name=name, flavor=SklearnWithOnnx, sk_model=sk_model, **kwargs)


def has_flavor(model_dir: str | Path) -> bool:
    """Whether an MLflow model directory carries the `onnx` flavor (reads MLmodel, no MLflow import)."""
    import yaml

    try:
        flavors = yaml.safe_load((Path(model_dir) / "MLmodel").read_text()).get("flavors") or {}
    except (OSError, AttributeError, yaml.YAMLError):
        return False
    return bool((flavors.get(FLAVOR) or {}).get("data"))
