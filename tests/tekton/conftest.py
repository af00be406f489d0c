from __future__ import annotations

import pytest

from tests.tekton.resources import tekton_resources


@pytest.fixture(scope="session")
def resources() -> list[tuple[str, int, dict]]:
    """Every document under tekton/, parsed once per session (tests copy before they mutate)."""
    return tekton_resources()
