"""`sluice.argocd.api.fetch_app_status` against a real HTTP server speaking Argo CD's REST API.

No Argo CD server runs here, so this is the one part of delivery checked without the real thing:
a loopback `http.server` answers exactly as the API is documented in argo-cd `assets/swagger.json`:
  - path `GET /api/v1/applications/{name}` (operationId `ApplicationService_Get`, query
    parameters `project` and `refresh`), 200 body `#/definitions/v1alpha1Application`
    (`metadata`, `spec`, `status`: `v1alpha1ApplicationStatus` with `sync`
    (`v1alpha1SyncStatus`: status, revision), `health` (`v1alpha1HealthStatus`: status, message)
    and `operationState` (`v1alpha1OperationState`: phase, message, syncResult.revision));
  - errors as `#/definitions/runtimeError` `{"error", "code", "message"}` with gRPC codes:
    16 Unauthenticated → HTTP 401, 7 PermissionDenied → 403, 5 NotFound → 404. Without a
    `project` query Argo CD answers an unknown name with 403 "permission denied"
    (argoproj/argo-cd#13000, #21695), with one it answers 404.
The JSON bodies in data/api/ are also validated against the upstream Application CRD, whose
status schema is generated from the same Go types the API serializes.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest

from sluice.argocd.api import fetch_app_status
from sluice.errors import SluiceError
from tests.conftest import free_port
from tests.manifests.argocd.conftest import DATA  # the API bodies the health Lua tests share

TOKEN = "test-token-generated-per-session"  # not a secret: the fake server accepts only this string


def load_app(name: str) -> dict[str, Any]:
    return json.loads((DATA / "api" / f"{name}.json").read_text())


class FakeArgoCD(BaseHTTPRequestHandler):
    apps: ClassVar[dict[str, dict[str, Any]]] = {}
    requests: ClassVar[list[dict[str, Any]]] = []
    release = threading.Event()  # the /slow/ prefix blocks until a test sets it

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _send(self, status: int, body: Any, content_type: str = "application/json") -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the timeout test): nothing left to tell it

    def _error(self, status: int, code: int, message: str) -> None:
        self._send(status, {"error": message, "code": code, "message": message})

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        self.requests.append({"path": url.path, "query": query, "auth": self.headers.get("Authorization")})
        path = url.path
        if path.startswith("/slow/"):
            self.release.wait(timeout=30)
            path = path[len("/slow") :]
        if path.startswith("/html/"):
            self._send(200, b"<html><body>Argo CD</body></html>", "text/html")
            return
        prefix = "/api/v1/applications/"
        if not path.startswith(prefix):
            self._send(404, b"404 page not found\n", "text/plain")
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self._error(401, 16, "invalid session: token signature is invalid")
            return
        name = urllib.parse.unquote(path[len(prefix) :])
        app = self.apps.get(name)
        project = query.get("project", [None])[0]
        if app is None or (project and app["spec"]["project"] != project):
            if project:
                self._error(404, 5, f'error getting application: applications.argoproj.io "{name}" not found')
            else:
                self._error(403, 7, "permission denied")
            return
        self._send(200, app)


@pytest.fixture(scope="module")
def argocd_url() -> Iterator[str]:
    FakeArgoCD.apps = {
        name: load_app(name) for name in ("sluice-staging", "sluice-production", "sluice-never-synced")
    }
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), FakeArgoCD)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    FakeArgoCD.release.set()
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["sluice-staging", "sluice-production", "sluice-never-synced"])
def test_fixture_bodies_match_the_upstream_application_schema(name: str, validate) -> None:
    body = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", **load_app(name)}
    assert validate(body) == []


def test_synced_healthy_staging(argocd_url: str) -> None:
    FakeArgoCD.requests.clear()
    status = fetch_app_status(argocd_url + "/", TOKEN, "sluice-staging")
    assert status == {
        "app": "sluice-staging",
        "sync_status": "Synced",
        "health_status": "Healthy",
        "health_message": None,
        "revision": "3f9c2a4d8e1b7c6a5d4e3f2a1b0c9d8e7f6a5b4c",
        "synced_revision": "3f9c2a4d8e1b7c6a5d4e3f2a1b0c9d8e7f6a5b4c",
        "operation_phase": "Succeeded",
        "operation_message": "successfully synced (all tasks run)",
    }
    (request,) = FakeArgoCD.requests
    assert request["path"] == "/api/v1/applications/sluice-staging"
    assert request["query"] == {"project": ["sluice"]}
    assert request["auth"] == f"Bearer {TOKEN}"


def test_production_mid_sync_reports_both_revisions(argocd_url: str) -> None:
    status = fetch_app_status(argocd_url, TOKEN, "sluice-production")
    assert (status["sync_status"], status["health_status"], status["operation_phase"]) == (
        "OutOfSync",
        "Progressing",
        "Running",
    )
    assert status["revision"] == "9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d"
    assert status["synced_revision"] == "1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b"


def test_never_synced_application_has_no_operation(argocd_url: str) -> None:
    status = fetch_app_status(argocd_url, TOKEN, "sluice-never-synced")
    assert (status["health_status"], status["operation_phase"], status["synced_revision"]) == (
        "Missing",
        None,
        None,
    )


def _error(call) -> str:
    with pytest.raises(SluiceError) as caught:
        call()
    message = str(caught.value)
    assert "\n" not in message and message
    return message


def test_rejected_token(argocd_url: str) -> None:
    message = _error(lambda: fetch_app_status(argocd_url, "expired", "sluice-staging"))
    assert "401" in message and "token signature is invalid" in message and "ARGOCD_AUTH_TOKEN" in message


def test_missing_token_is_refused_before_any_request(argocd_url: str) -> None:
    FakeArgoCD.requests.clear()
    assert "ARGOCD_AUTH_TOKEN" in _error(lambda: fetch_app_status(argocd_url, "", "sluice-staging"))
    assert FakeArgoCD.requests == []


def test_unknown_application_with_project_is_a_404(argocd_url: str) -> None:
    message = _error(lambda: fetch_app_status(argocd_url, TOKEN, "sluice-qa"))
    assert message.endswith("has no application 'sluice-qa' in project 'sluice' (404)")


def test_unknown_application_without_project_is_argo_cds_403(argocd_url: str) -> None:
    message = _error(lambda: fetch_app_status(argocd_url, TOKEN, "sluice-qa", project=None))
    assert "403" in message and "permission denied" in message and "does not exist" in message


def test_wrong_base_path_is_not_mistaken_for_an_unknown_app(argocd_url: str) -> None:
    message = _error(lambda: fetch_app_status(argocd_url + "/argocd", TOKEN, "sluice-staging"))
    assert message.startswith("no Argo CD API at") and "check the URL" in message


def test_html_answer_is_not_json(argocd_url: str) -> None:
    message = _error(lambda: fetch_app_status(argocd_url + "/html", TOKEN, "sluice-staging"))
    assert "non-JSON" in message


def test_unreachable_server() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago and nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    message = _error(lambda: fetch_app_status(f"http://127.0.0.1:{port}", TOKEN, "sluice-staging", timeout=2))
    assert message.startswith(f"Argo CD at http://127.0.0.1:{port} is unreachable:")


def test_server_that_never_answers_times_out(argocd_url: str) -> None:
    FakeArgoCD.release.clear()
    try:
        message = _error(lambda: fetch_app_status(argocd_url + "/slow", TOKEN, "sluice-staging", timeout=0.5))
    finally:
        FakeArgoCD.release.set()
    assert "unreachable" in message and "timed out" in message


@pytest.mark.parametrize("url", ["argocd.example.com", "ftp://argocd.example.com", "https://"])
def test_bad_url(url: str) -> None:
    assert "must be http(s)://" in _error(lambda: fetch_app_status(url, TOKEN, "sluice-staging"))
