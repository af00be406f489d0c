"""What Sluice does with the feature store: apply, plan, materialize, read offline and online.

Every Feast failure that is the caller's input (an unknown feature, an entity frame without its
timestamp, a missing or misshapen source, an unreachable Redis) becomes one SluiceError naming the
feature, column, file or address, raised before anything is registered or written where it can be
checked first. Feast raises a different exception type for each (KeyError, its own errors, ibis
and duckdb errors, redis-py's), hence the checks here instead of one except clause.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from ml.features import definitions
from ml.features.config import StoreConfig, check_online_reachable
from ml.features.sources import check_sources
from sluice.errors import SluiceError

ROW_ID = "__sluice_row"  # carried through a historical join: Feast returns rows sorted by time


def open_store(config: StoreConfig) -> Any:
    from feast import FeatureStore

    return FeatureStore(config=config.repo_config())


def apply(config: StoreConfig, source_dir: str | Path) -> definitions.Definitions:
    """Register the repository's objects, after checking every source and the online store."""
    check_sources(source_dir)
    check_online_reachable(config)
    defs = definitions.build(source_dir)
    open_store(config).apply(defs.objects)
    return defs


@dataclass(frozen=True)
class Change:
    action: str  # Created | Updated | Deleted
    kind: str  # the Feast object type, e.g. "feature view"
    name: str

    def __str__(self) -> str:
        return f"{self.action} {self.kind} {self.name}"


def plan(config: StoreConfig, source_dir: str | Path) -> list[Change]:
    """What `apply` would change, computed on a scratch copy of a file registry.

    `FeatureStore.plan` writes to a file registry (an empty home gets a registry.db), so a pull
    request's check must not point it at the real one. Unchanged objects are left out.
    """
    from feast.diff.registry_diff import TransitionType
    from feast.project import Project
    from feast.repo_contents import RepoContents

    check_sources(source_dir)
    defs = definitions.build(source_dir)
    with tempfile.TemporaryDirectory(prefix="sluice-feast-plan-") as scratch:
        doc = dict(config.doc)
        if config.registry_file is not None:
            copy = Path(scratch) / "registry.db"
            if config.registry_file.exists():
                shutil.copyfile(config.registry_file, copy)
            doc["registry"] = {**doc["registry"], "path": str(copy)}
            doc["online_store"] = {"type": "sqlite", "path": str(Path(scratch) / "online.db")}
        store = open_store(StoreConfig(doc, config.home, config.origin))
        contents = RepoContents(
            projects=[Project(name=store.project)],
            data_sources=[v.batch_source for v in defs.views],
            feature_views=defs.views,
            on_demand_feature_views=[], stream_feature_views=[], label_views=[], entities=defs.entities,
            feature_services=[defs.service], permissions=[],
        )
        registry_diff, _infra, _new = store.plan(contents)
    changes = [
        Change(d.transition_type.name.capitalize() + "d", d.feast_object_type.value, d.name)
        for d in registry_diff.feast_object_diffs
        if d.transition_type != TransitionType.UNCHANGED and d.name != "__dummy"
    ]
    return sorted(changes, key=lambda c: (c.kind, c.name))


def check_refs(store: Any, refs: list[str]) -> None:
    """An unknown view or feature, named, before Feast raises its KeyError deep in a join."""
    from feast.errors import FeatureViewNotFoundException

    for ref in refs:
        view_name, sep, feature = ref.partition(":")
        if not sep or not feature:
            raise SluiceError(f"feature reference {ref!r} is not VIEW:FEATURE")
        try:
            view = store.get_feature_view(view_name)
        except FeatureViewNotFoundException as exc:
            raise SluiceError(f"feature reference {ref}: no feature view {view_name!r} registered") from exc
        if feature not in {f.name for f in view.features}:
            raise SluiceError(f"feature reference {ref}: feature view {view_name} has no feature {feature!r}")


def service_refs(store: Any, service: str) -> list[str]:
    from feast.errors import FeatureServiceNotFoundException

    try:
        svc = store.get_feature_service(service)
    except FeatureServiceNotFoundException as exc:
        raise SluiceError(f"feature service {service!r} is not registered (`sluice features apply`)") from exc
    return [f"{p.name_to_use()}:{f.name}" for p in svc.feature_view_projections for f in p.features]


def historical(store: Any, entity_df: pd.DataFrame, refs: list[str]) -> pd.DataFrame:
    """Point-in-time join: each entity row gets the latest value stamped at or before its timestamp
    (within the view's ttl; later-created wins a tie), else null. Rows come back in entity_df order."""
    if definitions.EVENT_TIMESTAMP not in entity_df.columns:
        raise SluiceError(f"entity dataframe has no {definitions.EVENT_TIMESTAMP!r} column (the label time)")
    check_refs(store, refs)
    for name in sorted({ref.partition(":")[0] for ref in refs}):
        for key in (c.name for c in store.get_feature_view(name).entity_columns):
            if key not in entity_df.columns:
                raise SluiceError(f"entity dataframe has no join key column {key!r} (feature view {name})")
    frame = entity_df.copy()
    frame[ROW_ID] = range(len(frame))
    try:
        out = store.get_historical_features(entity_df=frame, features=refs).to_df()
    except Exception as exc:  # duckdb/ibis: a source gone or changed since apply
        raise SluiceError(f"building the training set failed: {str(exc).splitlines()[0][:300]}") from exc
    if len(out) != len(frame):
        raise SluiceError(f"the offline store returned {len(out)} rows for {len(frame)} entity rows")
    out = out.sort_values(ROW_ID, kind="stable").drop(columns=[ROW_ID]).reset_index(drop=True)
    return out


def materialize(store: Any, config: StoreConfig, start: datetime, end: datetime) -> None:
    """Copy the values valid in [start, end] into the online store. Safe to re-run after a kill: the
    online stores upsert by (entity key, feature) and the interval is recorded only on success."""
    check_online_reachable(config)
    try:
        store.materialize(start_date=start, end_date=end)
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            raise SluiceError(f"online store Redis at {config.redis_address}: {exc}") from exc
        raise


def online(store: Any, config: StoreConfig, refs: list[str], rows: list[dict[str, int]]) -> dict[str, list]:
    """Feature values by entity keys from the online store (one list per feature and key)."""
    try:
        return store.get_online_features(features=refs, entity_rows=rows).to_dict()
    except Exception as exc:
        if type(exc).__module__.startswith("redis"):
            raise SluiceError(f"online store Redis at {config.redis_address}: {exc}") from exc
        raise
