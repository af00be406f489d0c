"""`python tests/gates/slow_server.py <python -m ml.serving options>`: ml.serving, deliberately slow.

The same app, uvicorn setup and options as `python -m ml.serving`, with the model's scoring
wrapped in a sleep of SLUICE_TEST_SLOW_MS (default 150) milliseconds: a model that is too slow
for the policy, served through the production path, for the latency gate's "too slow" test.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository, for `tests.*`

from ml.serving.__main__ import serve_parser
from ml.serving.server import ServeOptions, create_app, serve


class SlowModel:
    """The real model, answering `delay_s` later (the event loop is blocked meanwhile, as a slow
    model's arithmetic would block it)."""

    def __init__(self, model, delay_s: float) -> None:
        self.model, self.delay_s = model, delay_s
        self.signature, self.classes = model.signature, model.classes

    def predict_columns(self, columns, rows):
        time.sleep(self.delay_s)
        return self.model.predict_columns(columns, rows)


def create_slow_app():
    app = create_app()
    app.model = SlowModel(app.model, float(os.environ.get("SLUICE_TEST_SLOW_MS", "150")) / 1000.0)
    return app


if __name__ == "__main__":
    args = serve_parser().parse_args()
    serve(
        ServeOptions(
            str(Path(args.model_uri).resolve()), args.host, args.port, args.workers, args.name, args.version,
            args.parent_pid, factory="tests.gates.slow_server:create_slow_app",
        )
    )  # fmt: skip
