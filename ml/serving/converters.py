"""skl2onnx converters for the two parts of Sluice's pipelines that skl2onnx gets wrong by default.

Both are registered per call (`convert_sklearn(custom_conversion_functions=...)`), never globally,
and both keep scikit-learn's float64 arithmetic so that the exported graph agrees with the
registered model to far better than the 1e-6 the parity check demands:

- `SimpleImputer(add_indicator=True)`: skl2onnx's own converter ignores the missing-value
  indicator columns (the graph comes out one column short and the next step refuses it) and
  stores the medians as float32. Here: `Where(IsNaN(x), medians, x)` in float64, then the
  indicator columns `Cast(IsNaN(x[:, features_]))`, exactly as `SimpleImputer.transform` does.
- Tree classifiers (`DecisionTreeClassifier`, `RandomForestClassifier`): skl2onnx emits
  `TreeEnsembleClassifier` v1 with float32 thresholds and leaf weights and a float32 output;
  on the demo forest (80 trees) that is off by up to 4e-7, with 300 deep trees by 7e-7, and
  its binary label is `p1 > 0.5`, not scikit-learn's argmax (300 pure trees: 5 of 4000 holdout
  labels differ on 150/150 ties). Here: the input is cast to float32 and back (that IS
  scikit-learn's `float32(x)`, compared with float64 thresholds), `TreeEnsemble` (ai.onnx.ml
  opset 5, float64 thresholds, weights and output) sums the leaf class fractions per class,
  `ArgMax` picks the label and a division by the tree count gives the probabilities: equal to
  `predict_proba` to the last bit on the whole demo holdout, ties included.
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, numpy_helper
from skl2onnx.algebra.onnx_ops import OnnxCast, OnnxConcat, OnnxGather, OnnxIdentity, OnnxIsNaN, OnnxWhere
from skl2onnx.common.data_types import DoubleTensorType, Int64TensorType
from skl2onnx.common.utils import check_input_and_output_numbers
from skl2onnx.operator_converters.common import concatenate_variables

ML_DOMAIN = "ai.onnx.ml"
# TreeEnsemble (ai.onnx.ml opset 5): float64 thresholds, leaf weights AND output.
TREE_ENSEMBLE_OPSET = 5


# ------------------------------------------------------------------------------ SimpleImputer
def imputer_output_width(imputer) -> int:
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    width = stats.size if imputer.keep_empty_features else int(np.count_nonzero(~np.isnan(stats)))
    if imputer.add_indicator:
        width += len(imputer.indicator_.features_)
    return width


def imputer_shape(operator) -> None:
    """Output is float64 [N, imputed columns + indicator columns]."""
    check_input_and_output_numbers(operator, input_count_range=[1, None], output_count_range=1)
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = DoubleTensorType([rows, imputer_output_width(operator.raw_operator)])


def check_imputer(imputer) -> None:
    """Refuse the imputer settings this converter does not reproduce (one-line reason)."""
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise ValueError(f"SimpleImputer(missing_values={missing!r}) is not exportable: only NaN is")
    if np.asarray(imputer.statistics_).dtype.kind not in "fiub":
        raise ValueError("SimpleImputer on non-numeric columns is not exportable")


def imputer_convert(scope, operator, container) -> None:
    imputer = operator.raw_operator
    check_imputer(imputer)
    opv = container.target_opset
    x = concatenate_variables(scope, operator.inputs, container, main_type=DoubleTensorType)
    stats = np.asarray(imputer.statistics_, dtype=np.float64)
    missing = OnnxIsNaN(x, op_version=opv)
    imputed = OnnxWhere(missing, stats.reshape(1, -1), x, op_version=opv)
    if not imputer.keep_empty_features and np.isnan(stats).any():
        kept = np.flatnonzero(~np.isnan(stats)).astype(np.int64)
        imputed = OnnxGather(imputed, kept, axis=1, op_version=opv)
    parts = [imputed]
    if imputer.add_indicator and len(imputer.indicator_.features_):
        features = np.asarray(imputer.indicator_.features_, dtype=np.int64)
        flags = OnnxGather(missing, features, axis=1, op_version=opv)
        parts.append(OnnxCast(flags, to=TensorProto.DOUBLE, op_version=opv))
    out = [operator.outputs[0]]
    node = (
        OnnxConcat(*parts, axis=1, op_version=opv, output_names=out)
        if len(parts) > 1
        else OnnxIdentity(parts[0], op_version=opv, output_names=out)
    )
    node.add_to(scope, container)


# ---------------------------------------------------------------------------- tree classifiers
def _trees(estimator) -> list:
    return (
        [t.tree_ for t in estimator.estimators_] if hasattr(estimator, "estimators_") else [estimator.tree_]
    )


def check_tree_classifier(estimator) -> None:
    if getattr(estimator, "n_outputs_", 1) != 1:
        raise ValueError(f"{type(estimator).__name__} with several outputs is not exportable")
    if np.asarray(estimator.classes_).dtype.kind not in "iub":
        raise ValueError(f"{type(estimator).__name__} with non-integer classes is not exportable")


def _encode_tree(tree, target: int, node_offset: int, leaf_offset: int) -> dict[str, np.ndarray]:
    """One scikit-learn tree as TreeEnsemble v5 entries scoring class `target`.

    v5 keeps interior nodes (`nodes_*`) and leaves (`leaf_*`) apart and a leaf feeds one target,
    so a classifier tree is encoded once per class. A tree that is a single leaf becomes one
    node whose two branches are that leaf (the encoding the ONNX spec prescribes).
    """
    left, right = tree.children_left, tree.children_right
    is_leaf = left == -1  # sklearn.tree._tree.TREE_LEAF
    interior, leaves = np.flatnonzero(~is_leaf), np.flatnonzero(is_leaf)
    weights = tree.value[leaves, 0, target]
    if interior.size == 0:
        one, zero = np.array([1]), np.array([0])
        return {
            "nodes_featureids": zero, "nodes_splits": np.array([0.0]), "nodes_modes": zero,
            "nodes_truenodeids": zero + leaf_offset, "nodes_falsenodeids": zero + leaf_offset,
            "nodes_trueleafs": one, "nodes_falseleafs": one, "nodes_missing_value_tracks_true": zero,
            "leaf_targetids": np.array([target]), "leaf_weights": weights,
        }  # fmt: skip
    position = np.zeros(tree.node_count, dtype=np.int64)
    position[interior] = node_offset + np.arange(interior.size)
    position[leaves] = leaf_offset + np.arange(leaves.size)
    true_child, false_child = left[interior], right[interior]
    return {
        "nodes_featureids": tree.feature[interior],
        "nodes_splits": tree.threshold[interior],
        "nodes_modes": np.zeros(interior.size, dtype=np.int64),  # 0 = BRANCH_LEQ: x <= threshold goes left
        "nodes_truenodeids": position[true_child],
        "nodes_falsenodeids": position[false_child],
        "nodes_trueleafs": is_leaf[true_child].astype(np.int64),
        "nodes_falseleafs": is_leaf[false_child].astype(np.int64),
        "nodes_missing_value_tracks_true": tree.missing_go_to_left[interior].astype(np.int64),
        "leaf_targetids": np.full(leaves.size, target),
        "leaf_weights": weights,
    }


def tree_ensemble_attributes(estimator) -> dict:
    """TreeEnsemble (ai.onnx.ml v5) attributes summing scikit-learn's leaf class fractions.

    Thresholds and fractions are scikit-learn's float64 values, unchanged, and the output is
    float64: the per-class sums are exactly the ones `predict_proba` adds up (tree by tree, in
    order), so `ArgMax` after it breaks a tie (150 of 300 trees each way) as `predict` does.
    """
    check_tree_classifier(estimator)
    parts, roots, nodes, leaves = [], [], 0, 0
    for tree in _trees(estimator):
        for target in range(len(estimator.classes_)):
            part = _encode_tree(tree, target, nodes, leaves)
            roots.append(nodes)
            nodes += len(part["nodes_splits"])
            leaves += len(part["leaf_weights"])
            parts.append(part)
    joined = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    attrs = {k: v.astype(np.int64).tolist() for k, v in joined.items() if k not in FLOAT_TENSORS}
    attrs["nodes_splits"] = numpy_helper.from_array(joined["nodes_splits"].astype(np.float64), "splits")
    attrs["leaf_weights"] = numpy_helper.from_array(joined["leaf_weights"].astype(np.float64), "weights")
    attrs["nodes_modes"] = numpy_helper.from_array(joined["nodes_modes"].astype(np.uint8), "modes")
    attrs.update(tree_roots=roots, n_targets=len(estimator.classes_), aggregate_function=1, post_transform=0)
    return attrs


FLOAT_TENSORS = ("nodes_splits", "leaf_weights", "nodes_modes")


def tree_classifier_shape(operator) -> None:
    """Outputs: label int64 [N], probabilities float64 [N, classes] (skl2onnx says float32 for forests)."""
    check_input_and_output_numbers(operator, input_count_range=[1, None], output_count_range=2)
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = Int64TensorType([rows])
    operator.outputs[1].type = DoubleTensorType([rows, len(operator.raw_operator.classes_)])


def tree_classifier_convert(scope, operator, container) -> None:
    """x -> float32(x) as float64 -> TreeEnsemble sums -> (classes[ArgMax], sums / trees)."""
    estimator = operator.raw_operator
    attrs = tree_ensemble_attributes(estimator)
    x = concatenate_variables(scope, operator.inputs, container, main_type=DoubleTensorType)
    name = scope.get_unique_variable_name
    op = scope.get_unique_operator_name
    as_float, as_double, sums, best = (
        name("as_float32"),
        name("float32_as_double"),
        name("sums"),
        name("argmax"),
    )
    container.add_node("Cast", [x], [as_float], to=TensorProto.FLOAT, name=op("Cast"))
    container.add_node("Cast", [as_float], [as_double], to=TensorProto.DOUBLE, name=op("Cast"))
    container.add_node(
        # skl2onnx refuses to declare ai.onnx.ml above 3; `finish` raises the import to 5 afterwards.
        "TreeEnsemble",
        [as_double],
        [sums],
        op_domain=ML_DOMAIN,
        op_version=3,
        name=op("Trees"),
        **attrs,
    )
    container.add_node("ArgMax", [sums], [best], axis=1, keepdims=0, name=op("ArgMax"))
    classes, count = name("classes"), name("tree_count")
    container.add_initializer(
        classes, TensorProto.INT64, [len(estimator.classes_)], [int(c) for c in estimator.classes_]
    )
    container.add_initializer(count, TensorProto.DOUBLE, [], [float(len(_trees(estimator)))])
    container.add_node("Gather", [classes, best], [operator.outputs[0].full_name], axis=0, name=op("Gather"))
    container.add_node("Div", [sums, count], [operator.outputs[1].full_name], name=op("Div"))


def finish(onx) -> None:
    """Declare ai.onnx.ml opset 5 when the graph holds a TreeEnsemble, then check the whole model.

    The graph's other ai.onnx.ml operators (OneHotEncoder, ArrayFeatureExtractor) are the same
    at opset 5; `onnx.checker` with full type inference confirms the result is a valid model.
    """
    import onnx

    if any(n.op_type == "TreeEnsemble" and n.domain == ML_DOMAIN for n in onx.graph.node):
        for opset in onx.opset_import:
            if opset.domain == ML_DOMAIN:
                opset.version = max(opset.version, TREE_ENSEMBLE_OPSET)
    onnx.checker.check_model(onx, full_check=True)


def custom_converters() -> tuple[dict, dict]:
    """(custom_conversion_functions, custom_shape_calculators) for `skl2onnx.convert_sklearn`."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.tree import DecisionTreeClassifier

    conversions = {
        SimpleImputer: imputer_convert,
        DecisionTreeClassifier: tree_classifier_convert,
        RandomForestClassifier: tree_classifier_convert,
    }
    shapes = {
        SimpleImputer: imputer_shape,
        DecisionTreeClassifier: tree_classifier_shape,
        RandomForestClassifier: tree_classifier_shape,
    }
    return conversions, shapes
