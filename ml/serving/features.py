"""Serving from the feature store: a request may carry entity keys instead of feature rows.

A model trained with `sluice run --features` saw features the store computed; in production its
caller knows an applicant and a loan, not 18 feature values. When the server is started with a
feature store (`python -m ml.serving --feature-store local|cluster`), a request whose columns are
exactly the service's join keys gets the features looked up in the online store (Redis in a
cluster) and scored; a request with feature columns is scored as before. The lookup is
synchronous on the event loop: ~0.4-0.7 ms p50 here (benchmarks/bench_features.py), a thread
hand-off would cost about as much. An entity the store has never seen is a 404 naming it.
"""

from __future__ import annotations

from pathlib import Path

from ml.features import config, definitions, store
from ml.serving.decoding import RequestError


class FeatureLookup:
    """Entity-key columns in, the model's feature columns out, from the online store."""

    def __init__(self, env: str, home: str | Path, service: str = definitions.SERVICE) -> None:
        self.config = config.load(env, home)
        config.check_online_reachable(self.config)
        self.store = store.open_store(self.config)
        self.refs = store.service_refs(self.store, service)
        views = {ref.partition(":")[0] for ref in self.refs}
        self.keys = sorted({c.name for v in views for c in self.store.get_feature_view(v).entity_columns})
        self.by_view: dict[str, list[str]] = {}
        for ref in self.refs:
            view, _, feature = ref.partition(":")
            self.by_view.setdefault(view, []).append(feature)

    def wants(self, columns: dict[str, list]) -> bool:
        return set(columns) == set(self.keys)

    def columns(self, columns: dict[str, list], rows: int) -> dict[str, list]:
        try:
            entity_rows = [{key: int(columns[key][i]) for key in self.keys} for i in range(rows)]
        except (TypeError, ValueError) as exc:
            raise RequestError(f"entity keys must be integers ({exc})") from exc
        found = store.online(self.store, self.config, self.refs, entity_rows)
        for view, features in self.by_view.items():
            for i, row in enumerate(entity_rows):
                if all(found[f][i] is None for f in features):
                    keys = ", ".join(f"{k}={v}" for k, v in row.items())
                    raise RequestError(f"no {view} features in the online store for {keys}", 404)
        return {name: values for name, values in found.items() if name not in self.keys}
