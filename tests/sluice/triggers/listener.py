"""A loopback stand-in for the EventListener's retraining trigger, built from the repository's YAML.

It applies what the cluster applies, in the same order: the GitHub interceptor's checks (content
type, allowed event types, HMAC-SHA256 of the raw body against the trigger's Secret, here a value
the test generates) and then the trigger's CEL filter, read from tekton/triggers/eventlistener.yaml
and evaluated with cel-python. Accepted events answer 202 (as an EventListener does) and are kept
for the test; refused ones answer 403 with the reason. A mock only of the HTTP front: the checks
are the real configuration, evaluated by the real CEL semantics.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sluice.triggers import event
from tests.manifests.tekton.resources import by_kind_name, tekton_resources

RETRAIN_TRIGGER = "retrain-on-signed-event"


def retrain_trigger() -> dict[str, Any]:
    listener = by_kind_name(tekton_resources(), "EventListener", "sluice-github")
    return next(t for t in listener["spec"]["triggers"] if t["name"] == RETRAIN_TRIGGER)


def interceptor_params(trigger: dict[str, Any], kind: str) -> dict[str, Any]:
    found = next(i for i in trigger["interceptors"] if i["ref"]["name"] == kind)
    return {p["name"]: p["value"] for p in found["params"]}


def cel_passes(trigger: dict[str, Any], body: Any) -> bool:
    """The trigger's CEL filter on `body`; an evaluation error (a missing field) refuses, as in Tekton."""
    celpy = pytest.importorskip("celpy", reason="cel-python not installed (pip install cel-python)")
    env = celpy.Environment()
    program = env.program(env.compile(interceptor_params(trigger, "cel")["filter"]))
    try:
        result = program.evaluate({"body": celpy.json_to_cel(body)})
    except Exception:  # celpy raises its own evaluation errors
        return False
    return isinstance(result, celpy.celtypes.BoolType) and bool(result)


@dataclass
class Listener:
    url: str
    secret: bytes
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def verdict(trigger: dict[str, Any], secret: bytes, headers: dict[str, str], raw: bytes) -> str:
    """ "" when the trigger would start a run, else why not."""
    github = interceptor_params(trigger, "github")
    reason = event.verify(headers, raw, secret, list(github["eventTypes"]))
    if reason:
        return reason
    try:
        body = json.loads(raw)
    except ValueError:
        return "body is not JSON"
    return "" if cel_passes(trigger, body) else "cel filter false"


@contextlib.contextmanager
def serve(secret: bytes) -> Iterator[Listener]:
    trigger = retrain_trigger()
    state = Listener("", secret)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            reason = verdict(trigger, secret, dict(self.headers.items()), raw)
            if reason:
                state.refused.append(reason)
                self.send_response(403)
                answer = json.dumps({"message": reason}).encode()
            else:
                state.accepted.append(
                    {"headers": {k.lower(): v for k, v in self.headers.items()}, "body": json.loads(raw)}
                )
                self.send_response(202)
                answer = b'{"eventListener":"sluice-github","namespace":"sluice-ci"}'
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, name="event-listener", daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
