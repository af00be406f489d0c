"""Read one Application's sync and health state from the Argo CD REST API.

`sluice status --argocd URL` puts what Argo CD reports beside the versions git holds, so a
reader sees at once whether the promoted commit is the one running. Only the standard library is
used: the CLI must stay light, and one authenticated GET needs no client library.

API shape (argo-cd `assets/swagger.json`): `GET /api/v1/applications/{name}` (operationId
`ApplicationService_Get`, optional `project` query) returns a `v1alpha1Application`; errors come
back as `runtimeError` JSON (`{"error", "code", "message"}` with a gRPC code). Argo CD answers 403
"permission denied" for an application that does not exist unless the project is named in the
query (then 404), so that a token cannot probe for names it may not see.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sluice.errors import SluiceError

# The variable the argocd CLI reads, so one token serves both.
TOKEN_ENV = "ARGOCD_AUTH_TOKEN"  # noqa: S105 - the name of a variable, not a secret
DEFAULT_PROJECT = "sluice"
_GRPC_NOT_FOUND = 5


def fetch_app_status(
    base_url: str,
    token: str,
    app_name: str,
    *,
    timeout: float = 10,
    project: str | None = DEFAULT_PROJECT,
    insecure: bool = False,
) -> dict[str, Any]:
    """Sync status, health and revisions of `app_name` as Argo CD sees them now.

    Returns `app`, `sync_status` (Synced/OutOfSync/Unknown), `health_status` (Healthy,
    Progressing, Degraded, Suspended, Missing, Unknown), `health_message`, `revision` (the commit
    Argo CD compared against), `synced_revision` (the commit of the last sync operation),
    `operation_phase` (Running/Succeeded/Failed/Error/Terminating, None if never synced) and
    `operation_message`. `project` narrows the query so an unknown name is a 404, not a 403.
    `insecure` skips TLS verification, like `argocd --insecure`, for self-signed test servers.
    """
    url = _application_url(base_url, app_name, project)
    if not token:
        raise SluiceError(f"no Argo CD token: set {TOKEN_ENV} (e.g. `argocd account generate-token`)")
    request = urllib.request.Request(  # noqa: S310 - scheme checked in _application_url
        url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"}
    )
    context = ssl._create_unverified_context() if insecure else None  # noqa: S323 - explicit opt-in
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:  # noqa: S310
            body = response.read()
    except urllib.error.HTTPError as exc:
        raise _http_error(exc, base_url, app_name, project) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise SluiceError(f"Argo CD at {base_url} is unreachable: {_one_line(reason)}") from None
    return _summarise(_json_object(body, base_url, app_name), app_name, base_url)


def _application_url(base_url: str, app_name: str, project: str | None) -> str:
    parsed = urllib.parse.urlsplit(base_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SluiceError(f"Argo CD URL must be http(s)://host[:port], got {base_url!r}")
    if not app_name:
        raise SluiceError("no Argo CD application name given")
    url = f"{base_url.rstrip('/')}/api/v1/applications/{urllib.parse.quote(app_name, safe='')}"
    if project:
        url += "?" + urllib.parse.urlencode({"project": project})
    return url


def _error_body(exc: urllib.error.HTTPError) -> tuple[str, int | None]:
    """The message and gRPC code of an Argo CD `runtimeError` body, if it is one."""
    try:
        data = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        return "", None
    if not isinstance(data, dict):
        return "", None
    message = data.get("message") or data.get("error") or ""
    code = data.get("code")
    return _one_line(message), code if isinstance(code, int) else None


def _http_error(exc: urllib.error.HTTPError, base_url: str, app: str, project: str | None) -> SluiceError:
    message, code = _error_body(exc)
    detail = f": {message}" if message else ""
    if exc.code == 401:
        return SluiceError(
            f"Argo CD at {base_url} rejected the token (401 Unauthorized{detail}); set {TOKEN_ENV}"
        )
    if exc.code == 403:
        hint = "" if project else " (without a project Argo CD also answers 403 for an unknown application)"
        return SluiceError(
            f"Argo CD at {base_url} denied access to application '{app}' (403{detail}); "
            f"the token lacks 'applications, get' on it or it does not exist{hint}"
        )
    if exc.code == 404:
        if code == _GRPC_NOT_FOUND:
            where = f" in project '{project}'" if project else ""
            return SluiceError(f"Argo CD at {base_url} has no application '{app}'{where} (404)")
        return SluiceError(
            f"no Argo CD API at {base_url} (404 for /api/v1/applications/{app}); check the URL"
        )
    return SluiceError(f"Argo CD at {base_url} answered HTTP {exc.code} for application '{app}'{detail}")


def _json_object(body: bytes, base_url: str, app: str) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise SluiceError(
            f"Argo CD at {base_url} sent a non-JSON answer for application '{app}'; "
            "is the URL the Argo CD server (not its UI behind a login proxy)?"
        )
    return data


def _summarise(app: dict[str, Any], app_name: str, base_url: str) -> dict[str, Any]:
    status = app.get("status")
    if not isinstance(status, dict):
        raise SluiceError(f"Argo CD at {base_url} returned application '{app_name}' without a status")
    sync = _dict(status.get("sync"))
    health = _dict(status.get("health"))
    operation = _dict(status.get("operationState"))
    result = _dict(operation.get("syncResult"))
    return {
        "app": _dict(app.get("metadata")).get("name", app_name),
        "sync_status": sync.get("status", "Unknown"),
        "health_status": health.get("status", "Unknown"),
        "health_message": health.get("message"),
        "revision": sync.get("revision") or _first(sync.get("revisions")),
        "synced_revision": result.get("revision") or _first(result.get("revisions")),
        "operation_phase": operation.get("phase"),
        "operation_message": operation.get("message"),
    }


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _first(values: Any) -> str | None:
    """Multi-source applications report one revision per source; ours have one source."""
    return values[0] if isinstance(values, list) and values else None


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())
