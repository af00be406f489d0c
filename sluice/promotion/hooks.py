"""The named pause points inside a promotion (the mechanism is `sluice.checkpoints`).

after-clone: the temporary clone exists, nothing is decided yet; after-write: the overlay file is
written in the clone; after-render: it rendered and the image was verified; after-commit /
before-push: committed in the clone; after-push: the remote holds the commit.
"""

from __future__ import annotations

from sluice.checkpoints import ENV_DIR, ENV_POINTS, checkpoint

POINTS = ("after-clone", "after-write", "after-render", "after-commit", "before-push", "after-push")

__all__ = ["ENV_DIR", "ENV_POINTS", "POINTS", "checkpoint"]
