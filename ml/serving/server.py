"""Run the serving app under uvicorn with uvloop and httptools, one process per worker.

Measured choices (benchmarks/bench_serving.py, docs/gates-and-evidence.md):
- The garbage collector is frozen once the model is loaded (`gc.freeze()`): the long-lived
  objects of numpy and onnxruntime are then never re-scanned by full collections (~15 % CPU per
  request here, and full-collection pauses out of the tail).
- The listening socket is re-opened so that Python reads its real protocol (TCP) back: sockets
  accepted from uvicorn's proto-0 listener would otherwise not get TCP_NODELAY under plain
  asyncio, and a keep-alive response body would wait ~40 ms for the client's delayed ACK
  (Kludex/uvicorn#3149). uvloop sets NODELAY itself; the re-open keeps `--workers > 1` safe.
- No access log, warnings only: a log line per request costs more than scoring the row.
"""

from __future__ import annotations

import gc
import os
import socket
from dataclasses import dataclass
from typing import Any

MODEL_PATH_ENV = "SLUICE_SERVING_MODEL_PATH"
MODEL_NAME_ENV = "SLUICE_SERVING_MODEL_NAME"
MODEL_VERSION_ENV = "SLUICE_SERVING_MODEL_VERSION"
# Set when the server must die with its starter: the supervisor's pid, so workers die with it.
SUPERVISOR_PID_ENV = "SLUICE_SERVING_SUPERVISOR_PID"


@dataclass(frozen=True)
class ServeOptions:
    model_dir: str
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    name: str = "model"
    version: str | None = None
    parent_pid: int = 0
    # "module:function" returning the ASGI app in each worker (tests wrap the model in a slow one)
    factory: str = "ml.serving.server:create_app"


def create_app() -> Any:
    """uvicorn app factory, run in every worker: load the model, then freeze what survives."""
    from ml.serving.app import ServingApp
    from ml.serving.lifecycle import die_with_parent
    from ml.serving.runtime import OnnxModel

    supervisor = int(os.environ.get(SUPERVISOR_PID_ENV) or 0)
    if supervisor and supervisor != os.getpid():  # a worker process: die with the supervisor
        die_with_parent(supervisor)
    app = ServingApp(
        OnnxModel.load(os.environ[MODEL_PATH_ENV]),
        name=os.environ.get(MODEL_NAME_ENV) or "model",
        version=os.environ.get(MODEL_VERSION_ENV) or None,
    )
    gc.collect()
    gc.freeze()
    return app


def listening_socket(config: Any) -> socket.socket:
    """uvicorn's bound listener, re-opened so that Python reads its real protocol (TCP) back.

    `Config.bind_socket()` creates it with proto 0; sockets accepted from it inherit that, and
    asyncio only sets TCP_NODELAY when proto is IPPROTO_TCP. `socket(fileno=...)` asks the kernel.
    """
    sock = socket.socket(fileno=config.bind_socket().detach())
    sock.set_inheritable(True)
    return sock


def serve(options: ServeOptions) -> None:
    """Serve until stopped (SIGTERM/SIGINT). The model is loaded in each worker by `create_app`."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    if options.parent_pid:
        from ml.serving.lifecycle import die_with_parent

        die_with_parent(options.parent_pid)
        os.environ[SUPERVISOR_PID_ENV] = str(os.getpid())
    os.environ[MODEL_PATH_ENV] = options.model_dir
    os.environ[MODEL_NAME_ENV] = options.name
    os.environ[MODEL_VERSION_ENV] = options.version or ""
    config = uvicorn.Config(
        options.factory,
        factory=True,
        host=options.host,
        port=options.port,
        workers=options.workers,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    sock = listening_socket(config)
    if options.workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
