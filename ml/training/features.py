"""Turn a contract-typed frame into model inputs, inside the model itself.

The preprocessing lives in the sklearn pipeline (not in a pipeline step) so that the registered
model accepts exactly what the contract describes: the model gate can serve it rows straight
from the holdout, and production callers send the same columns the data gate checked.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.data.contract import Contract
from ml.data.words import MISSING_CATEGORY


def normalize_frame(frame: pd.DataFrame, numeric: list, categorical: list, boolean: list) -> pd.DataFrame:
    """Plain numpy-friendly dtypes: floats with NaN (booleans as 0/1), objects with a missing marker.

    Pandas' nullable dtypes (pd.NA) trip sklearn's imputers and encoders; served JSON arrives
    with yet other dtypes. Normalising here makes training and serving see the same thing. Done
    block-wise with numpy: this runs on every served request, so its cost is latency.
    """
    out = {}
    if numeric or boolean:
        block = frame[numeric + boolean].apply(pd.to_numeric, errors="coerce")
        values = block.to_numpy(dtype="float64", na_value=np.nan)
        out.update({name: values[:, i] for i, name in enumerate(numeric + boolean)})
    if categorical:
        cats = frame[categorical].astype(object).to_numpy()
        missing = pd.isna(cats)
        cats = np.where(missing, MISSING_CATEGORY, cats).astype(str).astype(object)
        out.update({name: cats[:, i] for i, name in enumerate(categorical)})
    return pd.DataFrame(out, index=frame.index)


def feature_groups(contract: Contract) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {"numeric": [], "categorical": [], "boolean": []}
    for col in contract.features:
        if col.dtype in ("integer", "float"):
            groups["numeric"].append(col.name)
        elif col.dtype == "boolean":
            groups["boolean"].append(col.name)
        elif col.dtype == "category":
            groups["categorical"].append(col.name)
        # datetime features are not supported as model inputs yet; the contract's timestamp is
        # excluded from features anyway.
    return groups


def build_preprocessor(contract: Contract):
    """Normalise → impute (with missing indicators) → scale numerics; one-hot the categories."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

    groups = feature_groups(contract)
    numeric = groups["numeric"] + groups["boolean"]
    categories = [
        [*list(contract.column(name).categories or ()), MISSING_CATEGORY] for name in groups["categorical"]
    ]
    transformers = []
    if numeric:
        transformers.append(
            (
                "numeric",
                Pipeline(
                    [
                        (
                            "impute",
                            SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True),
                        ),
                        ("scale", StandardScaler()),
                    ]
                ),
                numeric,
            )
        )
    if groups["categorical"]:
        transformers.append(
            (
                "categorical",
                OneHotEncoder(categories=categories, handle_unknown="ignore", sparse_output=False),
                groups["categorical"],
            )
        )
    return Pipeline(
        [
            ("normalize", FunctionTransformer(normalize_frame, kw_args=groups, validate=False)),
            ("columns", ColumnTransformer(transformers, remainder="drop", verbose_feature_names_out=False)),
        ]
    )
