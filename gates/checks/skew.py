"""The skew check: does the online store serve what the offline store (the training data) holds?

Train/serve skew that the other checks cannot see: the model was trained on offline features, but
in production it is fed whatever the online store returns for an entity key. For a sample of
entities, the check reads every feature of the model's feature service both ways, as of the
instant the online store was materialized up to (the online store holds the LATEST row of each
entity, so comparing with the values at training time would flag every legitimate update as
skew), and fails naming each feature whose values differ by more than the policy's tolerance
(numbers) or at all (text, booleans, nulls). Advisory, and skipped, when the model does not use
the feature store.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from gates.checks.result import make_check

NAME = "skew.online_offline"
POLICY_KEY = "model.skew.max_abs_diff"


def not_applicable() -> dict:
    return make_check(
        NAME, "skew", None, None, "<=", "the model does not use the feature store",
        blocking=False, skipped=True,
    )


def _differs(online: Any, offline: Any, tolerance: float) -> float | None:
    """None when equal (within tolerance); else the absolute difference (inf for non-numbers)."""
    missing_on, missing_off = _missing(online), _missing(offline)
    if missing_on or missing_off:
        return None if missing_on and missing_off else math.inf
    if any(isinstance(v, (bool, str)) for v in (online, offline)):
        return None if online == offline else math.inf
    diff = abs(float(online) - float(offline))
    return None if diff <= tolerance else diff


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def compare(online: dict[str, list], offline: pd.DataFrame, features: list[str], tolerance: float) -> dict:
    """{feature: {"rows": n differing, "max_abs_diff": worst, "example": (online, offline)}}."""
    found: dict[str, dict] = {}
    for feature in features:
        rows, worst, example = 0, 0.0, None
        for on, off in zip(online[feature], offline[feature].tolist(), strict=True):
            diff = _differs(on, off, tolerance)
            if diff is not None:
                rows += 1
                worst = max(worst, diff)
                example = example or [on, off]
        if rows:
            found[feature] = {"rows": rows, "max_abs_diff": worst, "example": example}
    return found


def skew_check(spec: dict, policy: dict) -> dict:
    """Read the sample both ways and judge; `spec` is what the training run recorded (see
    ml.features.skew_spec), `policy` the model policy's `skew` section."""
    from ml.features import config, store

    cfg = config.load(spec["env"], spec["home"])
    feature_store = store.open_store(cfg)
    refs = store.service_refs(feature_store, spec["facts"]["feature_service"])
    sample = pd.DataFrame(spec["sample"]).head(int(policy["sample_size"]))
    rows = sample.to_dict(orient="records")
    online = store.online(feature_store, cfg, refs, rows)
    entity = sample.assign(event_timestamp=pd.Timestamp(spec["as_of"]))
    offline = store.historical(feature_store, entity, refs)
    features = [ref.partition(":")[2] for ref in refs]
    tolerance = float(policy["max_abs_diff"])
    found = compare(online, offline, features, tolerance)
    worst = max((f["max_abs_diff"] for f in found.values()), default=0.0)
    if found:
        named = ", ".join(f"{name} ({f['rows']} of {len(rows)} entities)" for name, f in found.items())
        reason = f"the online store differs from the offline store for {named}"
    else:
        reason = f"{len(rows)} entities x {len(features)} features equal within {tolerance:g}"
    return make_check(
        NAME, "skew", worst, tolerance, "<=", reason, passed=not found, policy_key=POLICY_KEY,
        details={"service": spec["facts"]["feature_service"], "entities": len(rows), "features": found},
    )
