"""ml.serving: MLflow's scoring app with the GC frozen and TCP_NODELAY on every connection."""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import socket

import numpy as np
import pandas as pd
import pytest

from gates.checks.latency import model_server
from ml.serving.app import MODEL_PATH_ENV, create_app, listening_socket


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(5)
    x = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    model = LogisticRegression().fit(x, (x["a"] + x["b"] > 0).astype(int))
    path = tmp_path_factory.mktemp("serving") / "model"
    mlflow.sklearn.save_model(model, str(path), input_example=x.head(2), serialization_format="cloudpickle")
    return {"path": path, "model": model, "rows": x.head(5)}


def test_accepted_connections_get_tcp_nodelay():
    import uvicorn

    config = uvicorn.Config(app=None, host="127.0.0.1", port=0)
    sock = listening_socket(config)
    assert sock.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        for _ in range(200):  # the accept callback runs on a later loop iteration
            if seen:
                break
            await asyncio.sleep(0.005)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(accept_one())
    assert seen == [1], "asyncio did not set TCP_NODELAY on the accepted connection"


def test_app_factory_freezes_what_the_model_load_left(saved_model, monkeypatch):
    monkeypatch.setenv(MODEL_PATH_ENV, str(saved_model["path"]))
    try:
        app = create_app()
        assert gc.get_freeze_count() > 10_000  # mlflow, pandas, sklearn, fastapi: far more than this
        assert {r.path for r in app.routes} >= {"/invocations", "/ping"}
    finally:
        gc.unfreeze()


@pytest.mark.slow
def test_two_workers_serve_the_models_predictions(saved_model):
    rows = saved_model["rows"]
    with model_server(saved_model["path"], workers=2, kind="sluice") as server:
        server.wait_ready(120)
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        body = json.dumps({"dataframe_split": json.loads(rows.to_json(orient="split", index=False))})
        conn.request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        resp = conn.getresponse()
        answer = json.loads(resp.read())
        conn.close()
    assert resp.status == 200
    assert answer["predictions"] == saved_model["model"].predict(rows).tolist()
