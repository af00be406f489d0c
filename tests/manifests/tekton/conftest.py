from __future__ import annotations

import pytest

from tests.manifests.tekton.resources import tekton_resources

# signed_images: signed serving images in a real registry, for the production promotions that the
# finalize step test merges (the promotion tests' own session fixture, shared rather than copied).
from tests.sluice.promotion.conftest import signed_images  # noqa: F401


@pytest.fixture(scope="session")
def resources() -> list[tuple[str, int, dict]]:
    """Every document under tekton/, parsed once per session (tests copy before they mutate)."""
    return tekton_resources()
