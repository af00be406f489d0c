"""A small client for the OCI distribution API: manifests and blobs, read and written.

Enough of the protocol for cosign's tag-based attachments: anonymous access, the Bearer token
challenge (`WWW-Authenticate: Bearer realm=...,service=...,scope=...`), Basic auth, credentials
from docker's `config.json` (inline `auth`/`username`+`password`, or a `docker-credential-*`
helper). HTTPS always, except plain HTTP to a loopback registry when the caller asks for it.

Nothing the registry returns is trusted: every manifest fetched by digest and every blob is hashed
and compared with the digest it was asked for.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import re
import shutil
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from sluice.errors import SluiceError
from sluice.supply_chain.constants import ACCEPTED_MANIFEST_TYPES, DOCKER_MANIFEST_V1_SIGNED
from sluice.supply_chain.refs import DIGEST_RE, DOCKER_HUB, DOCKER_HUB_API

MANIFEST_LIMIT = 4 * 1024 * 1024
BLOB_LIMIT = 64 * 1024 * 1024
_MAX_REDIRECTS = 5
USER_AGENT = "sluice-supply-chain/1"


class RegistryIntegrityError(SluiceError):
    """The registry returned content whose digest is not the one asked for."""


@dataclass(frozen=True)
class Manifest:
    body: bytes
    media_type: str
    digest: str

    def json(self) -> dict:
        try:
            doc = json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SluiceError(f"manifest {self.digest} is not JSON") from exc
        if not isinstance(doc, dict):
            raise SluiceError(f"manifest {self.digest} is not a JSON object")
        return doc


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --- credentials -------------------------------------------------------------------------------------


def _docker_config_path(path: str | None) -> Path | None:
    if path:
        candidate = Path(path)
        if candidate.is_dir():
            candidate = candidate / "config.json"
        if not candidate.is_file():
            raise SluiceError(f"docker config not found: {candidate}")
        return candidate
    base = os.environ.get("DOCKER_CONFIG")
    candidate = Path(base) / "config.json" if base else Path.home() / ".docker" / "config.json"
    return candidate if candidate.is_file() else None


def _normalise_server(key: str) -> str:
    host = re.sub(r"^[a-z]+://", "", key.strip()).split("/", 1)[0]
    return DOCKER_HUB if host in ("index.docker.io", DOCKER_HUB_API) else host


def _credential_helper(helper: str, server: str) -> tuple[str, str] | None:
    binary = shutil.which(f"docker-credential-{helper}")
    if not binary:
        raise SluiceError(
            f"docker config names credential helper {helper!r} but docker-credential-{helper} is not on PATH"
        )
    lookup = "https://index.docker.io/v1/" if server == DOCKER_HUB else server
    proc = subprocess.run(
        [binary, "get"], input=lookup, capture_output=True, text=True, timeout=60, check=False
    )
    if proc.returncode != 0:
        if "not found" in (proc.stdout + proc.stderr).lower():
            return None
        raise SluiceError(
            f"docker-credential-{helper} failed for {server}: {(proc.stderr or proc.stdout).strip()[:200]}"
        )
    try:
        doc = json.loads(proc.stdout)
        username, secret = doc["Username"], doc["Secret"]
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise SluiceError(f"docker-credential-{helper} returned no Username/Secret for {server}") from exc
    if username == "<token>":
        raise SluiceError(
            f"docker-credential-{helper} returned an identity token for {server}; not supported"
        )
    return username, secret


def find_credentials(registry: str, docker_config: str | None = None) -> tuple[str, str] | None:
    """(username, password) for `registry` from docker's config.json, or None for anonymous access."""
    path = _docker_config_path(docker_config)
    if path is None:
        return None
    try:
        config = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SluiceError(f"docker config {path} is not readable JSON: {exc}") from exc
    if not isinstance(config, dict):
        raise SluiceError(f"docker config {path} is not a JSON object")
    server = _normalise_server(registry)
    helpers = config.get("credHelpers") or {}
    for key, helper in helpers.items():
        if _normalise_server(key) == server:
            return _credential_helper(helper, server)
    for key, entry in (config.get("auths") or {}).items():
        if _normalise_server(key) != server or not isinstance(entry, dict):
            continue
        if entry.get("identitytoken") or entry.get("registrytoken"):
            raise SluiceError(
                f"docker config entry for {server} holds a token; only username/password is supported"
            )
        if entry.get("auth"):
            try:
                user, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
            except (ValueError, UnicodeDecodeError) as exc:
                raise SluiceError(
                    f"docker config {path}: 'auth' for {server} is not base64 user:password"
                ) from exc
            return user, password
        if entry.get("username") is not None:
            return entry["username"], entry.get("password", "")
    if config.get("credsStore"):
        return _credential_helper(config["credsStore"], server)
    return None


# --- challenge parsing --------------------------------------------------------------------------------

_PARAM = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """('bearer'|'basic'|..., params) from a WWW-Authenticate header (RFC 7235 auth-params)."""
    scheme, _, rest = header.strip().partition(" ")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if not match or match.end() == pos:
            break
        value = match.group(2) if match.group(2) is not None else match.group(3)
        params[match.group(1).lower()] = re.sub(r"\\(.)", r"\1", value)
        pos = match.end()
    return scheme.lower(), params


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


@dataclass
class _Response:
    status: int
    headers: dict[str, str]
    body: bytes
    url: str


class RegistryClient:
    """One registry host; keeps the Bearer tokens it has obtained, per repository scope."""

    def __init__(
        self,
        registry: str,
        *,
        docker_config: str | None = None,
        allow_insecure_loopback: bool = False,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.registry = registry
        self.host = DOCKER_HUB_API if registry == DOCKER_HUB else registry
        self.insecure = allow_insecure_loopback and is_loopback_host(self.host)
        self.base = f"{'http' if self.insecure else 'https'}://{self.host}"
        self.credentials = find_credentials(registry, docker_config)
        self.timeout = timeout
        context = ssl.create_default_context(cafile=ca_file)
        self._opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))
        self._tokens: dict[str, str] = {}
        self._basic = False

    # -- transport -----------------------------------------------------------------------------------

    def _raw(
        self, method: str, url: str, headers: dict[str, str], body: bytes | None, limit: int
    ) -> _Response:
        if not url.startswith(("https://", "http://")):
            raise SluiceError(f"refusing non-HTTP URL {url}")
        request = urllib.request.Request(  # noqa: S310 - scheme checked just above
            url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers}
        )
        try:
            resp = self._opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            resp = exc
        except ssl.SSLError as exc:
            hint = (
                " (for a plain-HTTP registry on loopback pass --allow-insecure-loopback)"
                if is_loopback_host(self.host)
                else ""
            )
            raise SluiceError(f"TLS with registry {self.host} failed: {exc.reason or exc}{hint}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = ""
            if isinstance(reason, ssl.SSLError) and is_loopback_host(self.host):
                hint = " (for a plain-HTTP registry on loopback pass --allow-insecure-loopback)"
            raise SluiceError(f"cannot reach registry {self.host}: {reason}{hint}") from exc
        with resp:
            data = resp.read(limit + 1) if method != "HEAD" else b""
            if len(data) > limit:
                raise SluiceError(
                    f"registry {self.host} answered {url} with more than {limit} bytes; refusing"
                )
            return _Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, data, url)

    def _auth_header(self, scope: str) -> dict[str, str]:
        if scope in self._tokens:
            return {"Authorization": f"Bearer {self._tokens[scope]}"}
        if self._basic and self.credentials:
            raw = f"{self.credentials[0]}:{self.credentials[1]}".encode()
            return {"Authorization": "Basic " + base64.b64encode(raw).decode()}
        return {}

    def _fetch_token(self, params: dict[str, str], scope: str) -> str:
        realm = params.get("realm")
        if not realm:
            raise SluiceError(f"registry {self.host} sent a Bearer challenge without a realm")
        parsed = urllib.parse.urlsplit(realm)
        if parsed.scheme != "https" and not (
            parsed.scheme == "http" and self.insecure and is_loopback_host(parsed.netloc)
        ):
            raise SluiceError(
                f"registry {self.host} points to token realm {realm}, which is not HTTPS; refusing"
            )
        query = {
            k: v
            for k, v in (("service", params.get("service")), ("scope", params.get("scope") or scope))
            if v
        }
        url = realm + ("&" if parsed.query else "?") + urllib.parse.urlencode(query)
        headers = {}
        if self.credentials:
            raw = f"{self.credentials[0]}:{self.credentials[1]}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(raw).decode()
        resp = self._raw("GET", url, headers, None, 1024 * 1024)
        if resp.status in (401, 403):
            who = (
                "the credentials from docker config"
                if self.credentials
                else "anonymous access (no docker config entry)"
            )
            raise SluiceError(
                f"token server {parsed.netloc} refused {who} "
                f"for {query.get('scope', 'registry')}: HTTP {resp.status}"
            )
        if resp.status != 200:
            raise SluiceError(f"token server {parsed.netloc} answered HTTP {resp.status}")
        try:
            doc = json.loads(resp.body)
            token = doc.get("token") or doc.get("access_token")
        except (json.JSONDecodeError, AttributeError) as exc:
            raise SluiceError(f"token server {parsed.netloc} did not answer JSON") from exc
        if not isinstance(token, str) or not token:
            raise SluiceError(f"token server {parsed.netloc} answered without a token")
        return token

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        limit: int = MANIFEST_LIMIT,
    ) -> _Response:
        """One API call, answering at most one auth challenge and following redirects.

        Redirects (blob downloads to object storage) drop the Authorization header when they
        leave the registry host, so credentials are never sent elsewhere.
        """
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        headers = dict(headers or {})
        resp = self._raw(method, url, {**headers, **self._auth_header(scope)}, body, limit)
        if resp.status == 401:
            scheme, params = parse_challenge(resp.headers.get("www-authenticate", ""))
            if scheme == "bearer":
                self._tokens[scope] = self._fetch_token(params, scope)
            elif scheme == "basic":
                if not self.credentials:
                    raise SluiceError(
                        f"registry {self.host} requires credentials and docker config has none for it"
                    )
                if self._basic:
                    raise SluiceError(f"registry {self.host} refused the credentials from docker config")
                self._basic = True
            else:
                raise SluiceError(
                    f"registry {self.host} answered 401 with an unsupported challenge {scheme or 'none'!r}"
                )
            resp = self._raw(method, url, {**headers, **self._auth_header(scope)}, body, limit)
            if resp.status == 401 and scheme == "basic":
                raise SluiceError(
                    f"registry {self.host} refused the credentials from docker config (HTTP 401)"
                )
            if resp.status == 401:
                raise SluiceError(
                    f"registry {self.host} refused access to {scope} with the token it asked for"
                )
        hops = 0
        while resp.status in (301, 302, 303, 307, 308) and method in ("GET", "HEAD"):
            hops += 1
            if hops > _MAX_REDIRECTS or "location" not in resp.headers:
                raise SluiceError(f"registry {self.host}: too many or broken redirects for {url}")
            target = urllib.parse.urljoin(resp.url, resp.headers["location"])
            same_host = urllib.parse.urlsplit(target).netloc == urllib.parse.urlsplit(url).netloc
            auth = self._auth_header(scope) if same_host else {}
            resp = self._raw(method, target, {**headers, **auth}, None, limit)
        return resp

    @staticmethod
    def _error(resp: _Response, what: str) -> SluiceError:
        detail = ""
        try:
            errors = json.loads(resp.body).get("errors") or []
            detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors if isinstance(e, dict))
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            detail = resp.body[:200].decode(errors="replace").strip()
        return SluiceError(f"{what}: HTTP {resp.status}" + (f" ({detail})" if detail else ""))

    # -- manifests -----------------------------------------------------------------------------------

    def get_manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest at a tag or digest, or None when the registry has none there (404)."""
        resp = self.request(
            "GET",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull",
            headers={"Accept": ", ".join((*ACCEPTED_MANIFEST_TYPES, DOCKER_MANIFEST_V1_SIGNED))},
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"GET manifest {self.registry}/{repository}:{reference}")
        digest = sha256_digest(resp.body)
        if DIGEST_RE.match(reference) and digest != reference:
            raise RegistryIntegrityError(
                f"registry returned a manifest for {repository}@{reference} whose sha256 is {digest}"
            )
        media_type = resp.headers.get("content-type", "").split(";")[0].strip()
        try:
            declared = json.loads(resp.body).get("mediaType")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError):
            declared = None
        return Manifest(resp.body, declared or media_type, digest)

    def put_manifest(self, repository: str, reference: str, body: bytes, media_type: str) -> str:
        resp = self.request(
            "PUT",
            f"/v2/{repository}/manifests/{reference}",
            scope=f"repository:{repository}:pull,push",
            headers={"Content-Type": media_type},
            body=body,
        )
        if resp.status not in (200, 201):
            raise self._error(resp, f"PUT manifest {self.registry}/{repository}:{reference}")
        digest = sha256_digest(body)
        returned = resp.headers.get("docker-content-digest")
        if returned and returned != digest:
            raise RegistryIntegrityError(f"registry stored manifest as {returned}, expected {digest}")
        return digest

    # -- blobs ---------------------------------------------------------------------------------------

    def get_blob(self, repository: str, digest: str, limit: int = BLOB_LIMIT) -> bytes | None:
        resp = self.request(
            "GET", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull", limit=limit
        )
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise self._error(resp, f"GET blob {self.registry}/{repository}@{digest}")
        actual = sha256_digest(resp.body)
        if actual != digest:
            raise RegistryIntegrityError(
                f"registry returned blob {digest} of {repository} with sha256 {actual}"
            )
        return resp.body

    def blob_exists(self, repository: str, digest: str) -> bool:
        resp = self.request("HEAD", f"/v2/{repository}/blobs/{digest}", scope=f"repository:{repository}:pull")
        return resp.status == 200

    def put_blob(self, repository: str, data: bytes) -> str:
        """Monolithic upload (POST then PUT ?digest=); skipped when the blob is already there."""
        digest = sha256_digest(data)
        if self.blob_exists(repository, digest):
            return digest
        scope = f"repository:{repository}:pull,push"
        start = self.request("POST", f"/v2/{repository}/blobs/uploads/", scope=scope, body=b"")
        if start.status != 202 or "location" not in start.headers:
            raise self._error(start, f"start blob upload to {self.registry}/{repository}")
        location = urllib.parse.urljoin(self.base + "/", start.headers["location"])
        if urllib.parse.urlsplit(location).netloc != urllib.parse.urlsplit(self.base).netloc:
            raise SluiceError(f"registry {self.host} sent the upload to another host ({location}); refusing")
        url = location + ("&" if "?" in location else "?") + urllib.parse.urlencode({"digest": digest})
        done = self.request(
            "PUT", url, scope=scope, headers={"Content-Type": "application/octet-stream"}, body=data
        )
        if done.status != 201:
            raise self._error(done, f"upload blob {digest} to {self.registry}/{repository}")
        return digest
