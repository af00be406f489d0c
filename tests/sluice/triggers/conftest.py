from __future__ import annotations

# The training side's fixtures: the seeded demo slice and the in-process CLI runner.
from tests.ml.conftest import demo_slice, sluice  # noqa: F401
