"""HTTP to one registry: where credentials may go, which redirects are followed, how much is read.

The rules, because a registry (or whoever can push to it) is not trusted:
- Credentials, Basic or a Bearer token obtained with them, go only to the registry's own origin:
  scheme, host and port (the port defaulted from the scheme), compared exactly. `https://reg` and
  `http://reg` are different origins even though their `host:port` text is the same.
- Plain HTTP only to a loopback registry the caller explicitly allowed (`--allow-insecure-loopback`).
  A redirect to `http://` is followed only then, and only to a loopback host; an HTTPS registry is
  never followed down to plain HTTP. Every other redirect is followed without Authorization
  (blob storage hands out pre-signed URLs).
- Token realms must be HTTPS (the same loopback exception).
- Bodies are read to a limit given by the caller, never whole; a larger answer is refused as soon
  as its Content-Length or its bytes say so.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import re
import ssl
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceError

DEFAULT_PORTS = {"http": 80, "https": 443}
USER_AGENT = "sluice-supply-chain/1"
TOKEN_LIMIT = 1024 * 1024
ERROR_BODY_LIMIT = 64 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = (301, 302, 303, 307, 308)
_CHUNK = 64 * 1024
_LOOPBACK_HINT = " (for a plain-HTTP registry on loopback pass --allow-insecure-loopback)"


class RegistryIntegrityError(SluiceError):
    """The registry served content that is not what was asked for: another digest, or too many bytes."""


class RedirectRefused(SluiceError):
    """The registry redirected where this client does not follow (down to plain HTTP)."""


@dataclass(frozen=True)
class Origin:
    """RFC 6454 origin: what credentials are bound to."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: str) -> Origin:
        parts = urllib.parse.urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise SluiceError(f"refusing non-HTTP URL {url}")
        try:
            port = parts.port
        except ValueError as exc:
            raise SluiceError(f"bad port in URL {url}") from exc
        return cls(scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS[scheme])


def is_loopback_host(host: str) -> bool:
    """True for localhost, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1:].split("]", 1)[0]
    elif name.count(":") == 1:
        name = name.split(":", 1)[0]
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


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
    """Redirects are decided by Transport._follow, never by urllib."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Response:
    """An answer whose body is still unread: the caller reads it to a limit (or not at all)."""

    def __init__(self, status: int, headers: dict[str, str], url: str, stream: Any) -> None:
        self.status, self.headers, self.url, self._stream = status, headers, url, stream

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()

    def read(self, limit: int, *, truncate: bool = False) -> bytes:
        """The body, at most `limit` bytes; RegistryIntegrityError (after hanging up) if there is more.

        `truncate` keeps the first `limit` bytes instead (error bodies, only shown to the user).
        With a Content-Length within the limit the body is read in one call into one buffer
        (http.client never reads past Content-Length), so a layer costs its size in memory once.
        """
        declared = self.headers.get("content-length", "")
        too_big = RegistryIntegrityError(
            f"registry answered {self.url} with more than {limit} bytes; refusing"
        )
        try:
            if self._stream is None:
                return b""
            if declared.isdigit() and int(declared) <= limit:
                return self._stream.read(int(declared))
            if declared.isdigit() and not truncate:
                raise too_big
            return self._read_chunks(limit, truncate, too_big)
        except (http.client.HTTPException, OSError) as exc:
            raise SluiceError(f"registry connection broke while reading {self.url}: {exc!r}") from exc
        finally:
            self.close()

    def _read_chunks(self, limit: int, truncate: bool, too_big: RegistryIntegrityError) -> bytes:
        """No usable Content-Length (chunked, or closed when done): read until `limit` + 1 bytes."""
        buf = bytearray()
        while len(buf) <= limit:
            chunk = self._stream.read(min(_CHUNK, limit + 1 - len(buf)))
            if not chunk:
                break
            buf += chunk
        if len(buf) > limit:
            if not truncate:
                raise too_big
            del buf[limit:]
        return bytes(buf)


@dataclass
class Reply:
    """A small answer read whole (manifests, tokens, errors)."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str


class Transport:
    """One registry origin; keeps the Bearer tokens it has obtained, per repository scope."""

    def __init__(
        self,
        host: str,
        *,
        credentials: tuple[str, str] | None = None,
        insecure: bool = False,
        ca_file: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.insecure = insecure and is_loopback_host(host)
        self.base = f"{'http' if self.insecure else 'https'}://{host}"
        self.origin = Origin.of(self.base)
        self.credentials = credentials
        self.timeout = timeout
        self.tokens: dict[str, str] = {}
        self.basic = False
        context = ssl.create_default_context(cafile=ca_file)
        self._opener = urllib.request.build_opener(_NoRedirect, urllib.request.HTTPSHandler(context=context))

    # -- one HTTP exchange ------------------------------------------------------------------------------

    def _send(self, method: str, url: str, headers: dict[str, str], body: bytes | None) -> Response:
        Origin.of(url)  # http(s) only
        request = urllib.request.Request(  # noqa: S310 - scheme checked just above
            url, data=body, method=method, headers={"User-Agent": USER_AGENT, **headers}
        )
        try:
            resp = self._opener.open(request, timeout=self.timeout)
            status = resp.status
        except urllib.error.HTTPError as exc:
            resp, status = exc, exc.code
        except ssl.SSLError as exc:
            hint = _LOOPBACK_HINT if is_loopback_host(self.host) else ""
            raise SluiceError(f"TLS with registry {self.host} failed: {exc.reason or exc}{hint}") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            hint = _LOOPBACK_HINT if isinstance(reason, ssl.SSLError) and is_loopback_host(self.host) else ""
            raise SluiceError(f"cannot reach registry {self.host}: {reason}{hint}") from exc
        headers_in = {k.lower(): v for k, v in resp.headers.items()}
        return Response(status, headers_in, url, resp if method != "HEAD" else _closed(resp))

    def authorization_for(self, scope: str, url: str) -> dict[str, str]:
        """The Authorization header for `url`, or none when `url` is not the registry's origin."""
        if Origin.of(url) != self.origin:
            return {}
        if scope in self.tokens:
            return {"Authorization": f"Bearer {self.tokens[scope]}"}
        if self.basic and self.credentials:
            return {"Authorization": _basic(self.credentials)}
        return {}

    # -- authentication ---------------------------------------------------------------------------------

    def _answer(self, challenge: str, scope: str) -> str:
        scheme, params = parse_challenge(challenge)
        if scheme == "bearer":
            self.tokens[scope] = self._fetch_token(params, scope)
        elif scheme == "basic":
            if not self.credentials:
                raise SluiceError(
                    f"registry {self.host} requires credentials and docker config has none for it"
                )
            if self.basic:
                raise SluiceError(f"registry {self.host} refused the credentials from docker config")
            self.basic = True
        else:
            raise SluiceError(
                f"registry {self.host} answered 401 with an unsupported challenge {scheme or 'none'!r}"
            )
        return scheme

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
        headers = {"Authorization": _basic(self.credentials)} if self.credentials else {}
        with self._send("GET", url, headers, None) as resp:
            status, body = resp.status, resp.read(TOKEN_LIMIT)
        if status in (401, 403):
            who = (
                "the credentials from docker config"
                if self.credentials
                else "anonymous access (no docker config entry)"
            )
            what = query.get("scope", "registry")
            raise SluiceError(f"token server {parsed.netloc} refused {who} for {what}: HTTP {status}")
        if status != 200:
            raise SluiceError(f"token server {parsed.netloc} answered HTTP {status}")
        try:
            doc = json.loads(body)
            token = doc.get("token") or doc.get("access_token")
        except (json.JSONDecodeError, AttributeError, UnicodeDecodeError) as exc:
            raise SluiceError(f"token server {parsed.netloc} did not answer JSON") from exc
        if not isinstance(token, str) or not token:
            raise SluiceError(f"token server {parsed.netloc} answered without a token")
        return token

    # -- requests ----------------------------------------------------------------------------------------

    def open(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Response:
        """One API call: answers at most one auth challenge, follows safe redirects; body unread."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        headers = dict(headers or {})
        resp = self._send(method, url, {**headers, **self.authorization_for(scope, url)}, body)
        if resp.status == 401:
            resp.close()
            scheme = self._answer(resp.headers.get("www-authenticate", ""), scope)
            resp = self._send(method, url, {**headers, **self.authorization_for(scope, url)}, body)
            if resp.status == 401:
                resp.close()
                if scheme == "basic":
                    raise SluiceError(
                        f"registry {self.host} refused the credentials from docker config (HTTP 401)"
                    )
                raise SluiceError(
                    f"registry {self.host} refused access to {scope} with the token it asked for"
                )
        return self._follow(method, url, resp, headers, scope)

    def _follow(self, method: str, url: str, resp: Response, headers: dict[str, str], scope: str) -> Response:
        hops = 0
        while resp.status in _REDIRECTS and method in ("GET", "HEAD"):
            resp.close()
            hops += 1
            location = resp.headers.get("location")
            if hops > _MAX_REDIRECTS or not location:
                raise SluiceError(f"registry {self.host}: too many or broken redirects for {url}")
            target = urllib.parse.urljoin(url, location)
            self._check_redirect(url, target)
            url = target
            resp = self._send(method, url, {**headers, **self.authorization_for(scope, url)}, None)
        return resp

    def _check_redirect(self, source: str, target: str) -> None:
        parts = urllib.parse.urlsplit(target)
        scheme = parts.scheme.lower()
        if scheme == "https" or (scheme == "http" and self.insecure and is_loopback_host(parts.netloc)):
            return
        raise RedirectRefused(
            f"registry {self.host} redirected {source} to plain HTTP ({target}); refusing to follow "
            "(only a loopback registry allowed with --allow-insecure-loopback may use plain HTTP)"
        )

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        scope: str,
        limit: int,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> Reply:
        """`open` and read the body to `limit` bytes (error bodies to a small limit)."""
        with self.open(method, path_or_url, scope=scope, headers=headers, body=body) as resp:
            if method == "HEAD":
                data = b""
            elif resp.status >= 300:
                data = resp.read(min(limit, ERROR_BODY_LIMIT), truncate=True)
            else:
                data = resp.read(limit)
            return Reply(resp.status, resp.headers, data, resp.url)


def _basic(credentials: tuple[str, str] | None) -> str:
    user, password = credentials or ("", "")
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _closed(resp: Any) -> None:
    resp.close()
