"""Fixtures for the gate tests: a small contract, seeded snapshots, and policy files.

The contract exercises every dtype the gates handle: a timestamp (freshness), a sensitive
attribute (fairness), integer/float ranges, a nullable float, and a category whose allowed value
`violet` never occurs in the reference (unseen-category drift).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

CONTRACT = {
    "apiVersion": "sluice.dev/v1",
    "kind": "DataContract",
    "name": "gate-test",
    "label": "default",
    "positive_class": 1,
    "sensitive_attribute": "group",
    "timestamp": "ts",
    "columns": [
        {"name": "ts", "dtype": "datetime"},
        {"name": "group", "dtype": "category", "categories": ["a", "b"]},
        {"name": "income", "dtype": "float", "min": 0, "max": 1000},
        {"name": "age", "dtype": "integer", "min": 18, "max": 100},
        {"name": "colour", "dtype": "category", "categories": ["red", "green", "blue", "violet"]},
        {"name": "score", "dtype": "float", "nullable": True},
        {"name": "default", "dtype": "integer", "min": 0, "max": 1},
    ],
}
AS_OF = datetime(2024, 3, 1, tzinfo=UTC)

# A policy loose enough that the seeded frames pass everything; tests tighten one knob at a time.
TEST_POLICY = {
    "apiVersion": "sluice.dev/v1",
    "kind": "GatePolicy",
    "name": "gate-tests",
    "data": {
        "volume": {"min_rows": 50, "min_reference_fraction": 0.5},
        "nulls": {"nullable_max_increase": 0.1},
        "labels": {"min_classes": 2, "min_positive_rows": 1},
        "duplicates": {"max_rate": 0.01},
        "freshness": {"max_age_hours": 24 * 60, "require_not_older_than_reference": True},
    },
    "model": {
        "quality": {"min_accuracy": 0.6, "min_f1": 0.5, "min_roc_auc": 0.6},
        # 40 requests at 40 req/s: a 1 s open-loop run; the loose p99 limit keeps a busy CI box green
        "latency": {
            "rate_rps": 40,
            "requests": 40,
            "warmup_requests": 10,
            "saturation_requests": 20,
            "concurrency": 2,
            "max_p99_ms": 1000,
        },
        "fairness": {"max_equal_opportunity_difference": 0.3, "min_group_positives": 5},
    },
}


def make_frame(
    n: int,
    seed: int,
    *,
    start: str = "2024-02-01",
    income_shift: float = 0.0,
    score_nulls: float = 0.1,
    colours: tuple[str, ...] = ("red", "green", "blue"),
) -> pd.DataFrame:
    """A seeded snapshot honouring CONTRACT, with a label that income and age really predict."""
    rng = np.random.default_rng(seed)
    income = np.clip(rng.normal(500 + income_shift, 120, n), 0, 1000).round(2)
    age = rng.integers(18, 80, n)
    logit = (income - 500) / 60 + (age - 48) / 15
    label = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    score = rng.normal(0, 1, n).round(4)
    score[rng.random(n) < score_nulls] = np.nan
    return pd.DataFrame(
        {
            "ts": pd.Timestamp(start, tz="UTC")
            + pd.to_timedelta(rng.integers(0, 20 * 24 * 3600, n), unit="s"),
            "group": rng.choice(["a", "b"], n),
            "income": income,
            "age": age,
            "colour": rng.choice(list(colours), n),
            "score": score,
            "default": label,
        }
    )


def write_yaml(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def deep_update(base: dict, override: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for key, value in override.items():
        out[key] = deep_update(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


@pytest.fixture
def contract_path(tmp_path: Path) -> Path:
    return write_yaml(tmp_path / "contract.yaml", CONTRACT)


@pytest.fixture
def policy_file(tmp_path: Path) -> Callable[..., Path]:
    """policy_file(overrides) -> a policy YAML: TEST_POLICY deep-merged with overrides."""
    counter = iter(range(10_000))

    def make(overrides: dict | None = None) -> Path:
        return write_yaml(
            tmp_path / f"policy-{next(counter)}.yaml", deep_update(TEST_POLICY, overrides or {})
        )

    return make


@pytest.fixture
def reference_frame() -> pd.DataFrame:
    return make_frame(400, 1, start="2024-01-01", score_nulls=0.0)


@pytest.fixture
def current_frame() -> pd.DataFrame:
    return make_frame(300, 2, start="2024-02-01", score_nulls=0.0)


@pytest.fixture
def run_gate(tmp_path: Path, contract_path: Path, policy_file: Callable[..., Path]):
    """run_gate(reference_df, current_df, policy_overrides) -> evidence (files under tmp_path/out)."""
    from gates.data_gate import run_data_gate

    counter = iter(range(10_000))

    def run(
        reference: pd.DataFrame,
        current: pd.DataFrame,
        overrides: dict | None = None,
        *,
        contract: Path | None = None,
        as_of: datetime = AS_OF,
    ) -> dict:
        i = next(counter)
        ref_path, cur_path = tmp_path / f"reference-{i}.csv", tmp_path / f"current-{i}.csv"
        reference.to_csv(ref_path, index=False)
        current.to_csv(cur_path, index=False)
        return run_data_gate(
            contract or contract_path,
            ref_path,
            cur_path,
            policy_file(overrides),
            tmp_path / f"out-{i}",
            as_of=as_of,
        )

    return run


def check(evidence: dict, name: str, column: str | None = None) -> dict:
    """The one check called `name` (about `column`, when given)."""
    matches = [
        c for c in evidence["checks"] if c["name"] == name and (column is None or c.get("column") == column)
    ]
    found = [(c["name"], c.get("column")) for c in evidence["checks"]]
    assert len(matches) == 1, f"expected one check {name} {column or ''}, found {found}"
    return matches[0]
