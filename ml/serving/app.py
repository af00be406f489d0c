"""Serve one MLflow model over HTTP: MLflow's own scoring app, minus two stalls that set its p99.

`python -m ml.serving --model-uri DIR [--host H] [--port P] [--workers N]` serves the same
FastAPI app as `mlflow models serve --env-manager local` (`mlflow.pyfunc.scoring_server.init` on
the loaded pyfunc model: /invocations, /ping, /health, /version) under uvicorn, with two changes
measured on the demo model (README, "Latency gate"):

- The garbage collector is frozen once the model is loaded (`gc.freeze()`). Importing MLflow,
  pandas, scikit-learn and FastAPI leaves ~250 000 long-lived objects that every full collection
  re-scans: ~130 ms with the server stopped, every ~500 requests. Frozen, they are never scanned
  again and full collections take ~2 ms.
- The listening socket reports IPPROTO_TCP, so asyncio sets TCP_NODELAY on every accepted
  connection. uvicorn's multi-worker path binds the socket with proto 0, asyncio then leaves Nagle
  on, and each keep-alive response body waits ~40 ms for the client's delayed ACK
  (Kludex/uvicorn#3149).

The model gate serves candidates with this module so that it measures what production runs; the
serving image must run it too (see images/serving/Dockerfile).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
from pathlib import Path

MODEL_PATH_ENV = "SLUICE_SERVING_MODEL_PATH"


def create_app():
    """uvicorn app factory, run in every worker: load the model, then freeze what survives."""
    from mlflow.pyfunc import scoring_server

    app = scoring_server.init(scoring_server.load_model_with_mlflow_config(os.environ[MODEL_PATH_ENV]))
    gc.collect()
    gc.freeze()
    return app


def _local_model(model_uri: str) -> str:
    if Path(model_uri).is_dir():
        return str(Path(model_uri).resolve())
    import mlflow.artifacts

    return mlflow.artifacts.download_artifacts(artifact_uri=model_uri)


def listening_socket(config) -> socket.socket:
    """uvicorn's bound listener, re-opened so that Python reads its real protocol back.

    `Config.bind_socket()` creates it with proto 0; sockets accepted from it inherit that, and
    asyncio only sets TCP_NODELAY when proto is IPPROTO_TCP. `socket(fileno=...)` asks the kernel.
    """
    sock = socket.socket(fileno=config.bind_socket().detach())
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ml.serving", description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model-uri", required=True, help="model directory or MLflow artifact URI")
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, default=8080)
    parser.add_argument("-w", "--workers", type=int, default=1)
    args = parser.parse_args(argv)

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[MODEL_PATH_ENV] = _local_model(args.model_uri)
    config = uvicorn.Config(
        "ml.serving.app:create_app", factory=True, host=args.host, port=args.port, workers=args.workers
    )
    sock = listening_socket(config)
    if args.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
