"""What a training run records about the feature store: stable identities for the definitions.

Feast's own markers do not identify definitions: `meta.current_version_number` moves only on
schema changes (not on a ttl change, which changes point-in-time results) and a later metadata-only
apply resets it to 0; the registry file's sha256 changes on every apply and materialize
(timestamps, materialization intervals are inside it). So each view gets a digest of its spec with
the registry's timestamps cleared and every repeated field sorted (the feature order of a rebuilt
view depends on PYTHONHASHSEED), and the service a digest over its views. Feast's version number
(the highest in the view's version history) and the registry file's sha256 at training time are
recorded too, as what Feast itself says.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ml.features.config import StoreConfig
from sluice.digest import sha256_file


def view_digest(view: Any) -> str:
    spec = view.to_proto().spec
    spec.batch_source.ClearField("meta")
    if spec.HasField("stream_source"):
        spec.stream_source.ClearField("meta")
    for field in ("features", "entity_columns"):
        items = sorted(getattr(spec, field), key=lambda f: f.name)
        del getattr(spec, field)[:]
        getattr(spec, field).extend(items)
    entities = sorted(spec.entities)
    del spec.entities[:]
    spec.entities.extend(entities)
    return hashlib.sha256(spec.SerializeToString(deterministic=True)).hexdigest()


def _feast_version(store: Any, name: str) -> int:
    try:
        history = store.registry.list_feature_view_versions(name, store.project)
    except (AttributeError, NotImplementedError):
        return 0
    return max((int(h["version_number"]) for h in history), default=0)


def service_facts(store: Any, config: StoreConfig, service_name: str) -> dict[str, Any]:
    """The service, each view's digest, features and Feast version, and the registry's state."""
    service = store.get_feature_service(service_name)
    views: dict[str, dict[str, Any]] = {}
    for projection in service.feature_view_projections:
        view = store.get_feature_view(projection.name)
        views[view.name] = {
            "digest": view_digest(view),
            "features": sorted(f.name for f in projection.features),
            "feast_version": _feast_version(store, view.name),
        }
    lines = "\n".join(f"{n}:{v['digest']}:{','.join(v['features'])}" for n, v in sorted(views.items()))
    registry = config.registry_file
    return {
        "feature_service": service_name,
        "feature_service_digest": hashlib.sha256(lines.encode()).hexdigest(),
        "feature_views": views,
        "project": store.project,
        "registry_sha256": sha256_file(registry) if registry is not None and registry.exists() else "",
    }
