"""`python -m ml.serving` as a process: the app factory, TCP_NODELAY, real servers, their lifecycle.

The model is a demo-slice logistic regression saved as the log step saves it (tests/ml/serving_models).
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import socket
import subprocess
import sys

import orjson
import pytest

from ml.serving.runtime import OnnxModel
from ml.serving.server import MODEL_PATH_ENV, create_app, listening_socket
from tests.conftest import free_port, wait_until
from tests.ml.serving_models import fit_kind, save_with_flavor, split_demo


@pytest.fixture(scope="module")
def data(demo_slice):
    return split_demo(demo_slice)


@pytest.fixture(scope="module")
def models(data):
    contract, train, _ = data
    return {kind: fit_kind(contract, train, kind) for kind in ("logistic_regression", "decision_tree")}


def test_the_app_factory_freezes_what_the_model_load_left(tmp_path, models, monkeypatch):
    monkeypatch.setenv(MODEL_PATH_ENV, str(save_with_flavor(models["decision_tree"], tmp_path / "m")))
    try:
        app = create_app()
        assert gc.get_freeze_count() > 1_000
        assert app.model.signature.estimator == "DecisionTreeClassifier"
    finally:
        gc.unfreeze()


def test_accepted_connections_get_tcp_nodelay():
    import uvicorn

    sock = listening_socket(uvicorn.Config(app=None, host="127.0.0.1", port=0))
    assert sock.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport):
            seen.append(transport.get_extra_info("socket").getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def accept_one() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        _, writer = await asyncio.open_connection("127.0.0.1", sock.getsockname()[1])
        for _ in range(200):  # the accept callback runs on a later loop iteration
            if seen:
                break
            await asyncio.sleep(0.005)
        writer.close()
        server.close()
        await server.wait_closed()

    asyncio.run(accept_one())
    assert seen == [1], "asyncio did not set TCP_NODELAY on the accepted connection"


# ------------------------------------------------------------------------------ the server
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, models):
    return save_with_flavor(models["logistic_regression"], tmp_path_factory.mktemp("served") / "model")


def ready(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/v2/health/ready")
        return conn.getresponse().status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_the_server_answers_the_whole_holdout_in_one_request(workers, model_dir, models, data):
    port = free_port()
    cmd = [sys.executable, "-m", "ml.serving", "--model-uri", str(model_dir), "--port", str(port)]
    proc = subprocess.Popen([*cmd, "--workers", str(workers)], stderr=subprocess.PIPE)
    try:
        wait_until(lambda: ready(port), "ml.serving ready", proc=proc)
        holdout = data[2]
        split = holdout[OnnxModel.load(model_dir).columns].to_json(orient="split", index=False)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("POST", "/invocations", body=b'{"dataframe_split": ' + split.encode() + b"}",
                     headers={"Content-Type": "application/json"})  # fmt: skip
        reply = conn.getresponse()
        assert reply.status == 200
        assert (
            orjson.loads(reply.read())["predictions"]
            == models["logistic_regression"].predict(holdout).tolist()
        )
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_the_server_dies_with_the_process_that_started_it(model_dir):
    """SIGKILL the starter (as a killed gate would be): the server must not outlive it."""
    port = free_port()
    starter = subprocess.Popen(
        [sys.executable, "-c", (
            "import os, subprocess, sys, time;"
            f"p = subprocess.Popen([sys.executable, '-m', 'ml.serving', '-m', {str(model_dir)!r},"
            f" '--port', '{port}', '--parent-pid', str(os.getpid())]);"
            "print(p.pid, flush=True); time.sleep(600)"
        )],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    server_pid = int(starter.stdout.readline())
    wait_until(lambda: ready(port), "ml.serving ready")
    starter.kill()
    starter.wait()
    wait_until(lambda: not _running(server_pid), "server exit after its starter was killed", timeout=30)
    assert not ready(port)


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False
