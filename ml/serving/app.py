"""The serving app: a bare ASGI callable (no framework) speaking MLflow's and KServe's protocols.

Routes:
- MLflow scoring server: `GET /ping`, `GET /health`, `GET /version`, `POST /invocations`.
- Open Inference Protocol v2: `GET /v2`, `GET /v2/health/live`, `GET /v2/health/ready`,
  `GET /v2/models/<name>[/versions/<v>]`, `GET .../ready`, `POST .../infer`.

No framework because at this size the framework IS the cost: MLflow's FastAPI app spends more
per request in routing, middleware and a thread hop than onnxruntime spends scoring. Scoring
runs inline on the event loop (tens of microseconds per row; a thread hand-off costs more).

Every request that cannot be scored gets a 4xx with a one-line reason in the body: MLflow's
`{"error_code", "message"}` shape on `/invocations`, `{"error": ...}` on v2 routes. An
unexpected exception (a bug) is a 500 whose body names only the exception type; its traceback
goes to the server log, never to the client.
"""

from __future__ import annotations

import logging
import traceback
from importlib import metadata

import orjson

from ml.serving import protocol
from ml.serving.decoding import RequestError
from ml.serving.runtime import OnnxModel

log = logging.getLogger("ml.serving")
MAX_BODY_BYTES = 64 * 1024 * 1024
JSON_HEADERS = [(b"content-type", b"application/json")]
TEXT_HEADERS = [(b"content-type", b"text/plain; charset=utf-8")]
DATATYPES = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "unknown"


async def _send(send, status: int, body: bytes, headers=JSON_HEADERS) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _body(receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionAbortedError
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise RequestError(f"request body over {MAX_BODY_BYTES // 2**20} MiB", 413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


class ServingApp:
    """ASGI app serving one model under one name (and optionally one version)."""

    def __init__(self, model: OnnxModel, name: str = "model", version: str | None = None) -> None:
        self.model = model
        self.name = name
        self.version = version
        self.kinds = dict(model.signature.columns)
        self.metadata = orjson.dumps(self._model_metadata())
        self.static = {
            ("GET", "/ping"): (200, b"\n", JSON_HEADERS),
            ("GET", "/health"): (200, b"\n", JSON_HEADERS),
            ("GET", "/version"): (200, _version("mlflow").encode(), JSON_HEADERS),
            ("GET", "/v2"): (
                200,
                orjson.dumps({"name": "sluice-serving", "version": _version("sluice"), "extensions": []}),
                JSON_HEADERS,
            ),
            ("GET", "/v2/health/live"): (200, b'{"live":true}', JSON_HEADERS),
            ("GET", "/v2/health/ready"): (200, b'{"ready":true}', JSON_HEADERS),
        }

    def _model_metadata(self) -> dict:
        doc = {
            "name": self.name,
            "platform": "onnxruntime_onnx",
            "inputs": [
                {"name": n, "datatype": DATATYPES[k], "shape": [-1, 1]}
                for n, k in self.model.signature.columns
            ],
            "outputs": [
                {"name": "predict", "datatype": "INT64", "shape": [-1]},
                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(self.model.classes)]},
            ],
        }
        if self.version:
            doc["versions"] = [self.version]
        return doc

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method, path = scope["method"], scope["path"]
        static = self.static.get((method, path))
        try:
            if static is not None:
                await _send(send, *static)
            elif path == "/invocations":
                await self._invocations(scope, receive, send, method)
            elif path.startswith("/v2/models/"):
                await self._v2_model(path, receive, send, method)
            else:
                await _send(send, 404, protocol.v2_error(f"no route {method} {path}"))
        except ConnectionAbortedError:
            return
        except Exception as exc:  # a bug: say which, log the traceback, keep serving
            log.error("unexpected error on %s %s\n%s", method, path, traceback.format_exc())
            await _send(
                send, 500, protocol.v2_error(f"internal error ({type(exc).__name__}); see server log")
            )

    async def _invocations(self, scope, receive, send, method: str) -> None:
        if method != "POST":
            await _send(send, 405, protocol.mlflow_error(RequestError("use POST /invocations", 405)))
            return
        try:
            body = await _body(receive)
            columns, rows = protocol.mlflow_request(body, _header(scope, b"content-type"))
            labels, _ = self.model.predict_columns(columns, rows)
        except RequestError as exc:
            await _send(send, exc.status, protocol.mlflow_error(exc))
            return
        await _send(send, 200, protocol.mlflow_response(labels))

    async def _v2_model(self, path: str, receive, send, method: str) -> None:
        name, version, action = _split_model_path(path)
        if name != self.name or (
            version is not None and self.version is not None and version != self.version
        ):
            label = name if version is None else f"{name} version {version}"
            await _send(
                send, 404, protocol.v2_error(f"model {label} not found; this server serves {self.name}")
            )
            return
        route = (method, action)
        if route == ("GET", ""):
            await _send(send, 200, self.metadata)
        elif route == ("GET", "ready"):
            await _send(send, 200, orjson.dumps({"name": self.name, "ready": True}))
        elif route == ("POST", "infer"):
            await self._infer(receive, send)
        else:
            await _send(
                send,
                404 if action not in ("", "ready", "infer") else 405,
                protocol.v2_error(f"no route {method} {path}"),
            )

    async def _infer(self, receive, send) -> None:
        try:
            body = await _body(receive)
            columns, rows, outputs, request_id = protocol.v2_request(body, self.kinds)
            labels, proba = self.model.predict_columns(columns, rows)
        except RequestError as exc:
            await _send(send, exc.status, protocol.v2_error(str(exc)))
            return
        await _send(
            send, 200, protocol.v2_response(self.name, self.version, request_id, outputs, labels, proba)
        )

    @staticmethod
    async def _lifespan(receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def _header(scope, key: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == key:
            return value.decode("latin-1")
    return None


def _split_model_path(path: str) -> tuple[str, str | None, str]:
    """/v2/models/<name>[/versions/<v>][/<action>] -> (name, version or None, action or "")."""
    parts = path[len("/v2/models/") :].split("/")
    name, rest = parts[0], parts[1:]
    version = None
    if len(rest) >= 2 and rest[0] == "versions":
        version, rest = rest[1], rest[2:]
    return name, version, "/".join(rest)
