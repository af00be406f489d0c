"""The demo model's feature repository: two entities, two feature views over Parquet, one service.

The credit-default demo's columns split the way a lender's systems do: what is known about the
applicant (a bureau pull, stamped some days before the application and refreshed later) and the
terms of one loan (stamped when it was applied for). Each view is a Parquet source with an event
timestamp and a `created` timestamp (the later-created row wins a tie), so a training set joins
them point-in-time correctly on the application's timestamp.

The objects are built by `build(source_dir)` rather than at import, because where the Parquet
files live differs between a laptop (the Sluice home) and a cluster (the object store).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

PROJECT = "sluice_credit"
SERVICE = "credit_default_v1"
EVENT_TIMESTAMP = "event_timestamp"
CREATED_TIMESTAMP = "created"

# name -> (entity, join key, ttl, {feature: Feast type name}); the order is the contract's order.
# No ttl (0: values never expire): an applicant's profile and a loan's terms stay true until a newer
# row replaces them, and the skew check compares the online store (which materialization fills
# with the latest row, whatever its age) with the offline store as of the same instant; a ttl
# would null old rows on one side only. The point-in-time test exercises ttl on its own view.
VIEWS: dict[str, tuple[str, str, timedelta, dict[str, str]]] = {
    "applicant_profile": (
        "applicant",
        "applicant_id",
        timedelta(0),
        {
            "age": "Int64",
            "annual_income": "Float64",
            "employment_status": "String",
            "education": "String",
            "home_ownership": "String",
            "region": "String",
            "debt_to_income": "Float64",
            "credit_utilization": "Float64",
            "num_open_accounts": "Int64",
            "num_delinquencies_2y": "Int64",
            "months_since_last_delinquency": "Float64",
            "credit_history_years": "Float64",
            "num_credit_inquiries_6m": "Int64",
        },
    ),
    "loan_terms": (
        "loan",
        "loan_id",
        timedelta(0),
        {
            "loan_purpose": "String",
            "loan_amount": "Float64",
            "loan_term_months": "Int64",
            "interest_rate": "Float64",
            "has_cosigner": "Bool",
        },
    ),
}
ENTITIES = {"applicant": "A person applying for credit", "loan": "One loan application"}
JOIN_KEYS = tuple(view[1] for view in VIEWS.values())


def source_path(source_dir: str | Path, view: str) -> Path:
    return Path(source_dir) / f"{view}.parquet"


def feature_refs() -> list[str]:
    """Every feature of the service as `view:feature`, in the views' order."""
    return [f"{name}:{feature}" for name, (*_, features) in VIEWS.items() for feature in features]


@dataclass(frozen=True)
class Definitions:
    entities: list[Any]
    views: list[Any]
    service: Any

    @property
    def objects(self) -> list[Any]:
        """What `apply` registers (data sources travel inside their views)."""
        return [*self.entities, *self.views, self.service]


def build(source_dir: str | Path) -> Definitions:
    """The Feast objects, with each view's source at `<source_dir>/<view>.parquet`."""
    from feast import Entity, FeatureService, FeatureView, Field, FileSource, types
    from feast.value_type import ValueType

    entities = {
        name: Entity(name=name, join_keys=[key], value_type=ValueType.INT64, description=ENTITIES[name])
        for name, key in ((view[0], view[1]) for view in VIEWS.values())
    }
    views = []
    for name, (entity, _key, ttl, features) in VIEWS.items():
        source = FileSource(
            name=f"{name}_source",
            path=str(source_path(source_dir, name)),
            timestamp_field=EVENT_TIMESTAMP,
            created_timestamp_column=CREATED_TIMESTAMP,
        )
        schema = [Field(name=f, dtype=getattr(types, t)) for f, t in features.items()]
        views.append(
            FeatureView(
                name=name, entities=[entities[entity]], ttl=ttl, source=source, schema=schema, online=True,
                tags={"team": "credit"},
            )
        )
    service = FeatureService(
        name=SERVICE, features=views, description="The credit-default demo model's inputs"
    )
    return Definitions(list(entities.values()), views, service)
