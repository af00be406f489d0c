"""Downloading a pinned schema file: bounded in size and time, redirects followed the careful way.

The bytes are checked against a sha256 pin afterwards, so integrity does not rest on the transport;
what this module bounds is what a server (upstream, a mirror, or anything a redirect leads to) can
make `sluice lint` do: read at most `MAX_BYTES`, wait at most `TIMEOUT_SECONDS` per socket
operation and `DEADLINE_SECONDS` for the whole transfer, follow at most `MAX_REDIRECTS` redirects,
only to http(s) URLs, and never from https down to plain http.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from sluice.errors import SluiceError

# The largest pinned file (KServe's InferenceService CRD) is 1.9 MB; 16 MiB leaves room for upstream
# growth while refusing a server that streams without end.
MAX_BYTES = 16 * 1024 * 1024
TIMEOUT_SECONDS = 30.0
DEADLINE_SECONDS = 120.0
MAX_REDIRECTS = 5
USER_AGENT = "sluice-lint/1"
_CHUNK = 64 * 1024


class DownloadError(SluiceError):
    """The file could not be fetched (network, HTTP status, size or time bound): exit 2."""


class _CarefulRedirects(urllib.request.HTTPRedirectHandler):
    """Follow at most MAX_REDIRECTS hops, to http(s) only, and never from https to http."""

    max_redirections = MAX_REDIRECTS

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        old = urllib.parse.urlsplit(req.full_url).scheme
        new = urllib.parse.urlsplit(newurl).scheme
        if new not in ("http", "https"):
            raise DownloadError(f"{req.full_url} redirects to {newurl}: not an http(s) URL; refusing")
        if old == "https" and new == "http":
            raise DownloadError(f"{req.full_url} redirects to {newurl}: from https to plain http; refusing")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_CarefulRedirects)


def download(url: str, *, limit: int = MAX_BYTES, timeout: float = TIMEOUT_SECONDS,
             deadline: float = DEADLINE_SECONDS) -> bytes:
    """The body at `url` (after redirects), or DownloadError saying what went wrong."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise DownloadError(f"cannot download {url}: only http(s) URLs are fetched")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})  # noqa: S310 - scheme checked
    started = time.monotonic()
    try:
        with _OPENER.open(request, timeout=timeout) as resp:
            return _read_bounded(resp, url, limit, started, deadline)
    except DownloadError:
        raise
    except urllib.error.HTTPError as exc:
        raise DownloadError(f"cannot download {url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"cannot download {url}: {reason}") from exc


def _read_bounded(resp: Any, url: str, limit: int, started: float, deadline: float) -> bytes:
    declared = resp.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise DownloadError(f"cannot download {url}: {int(declared)} bytes, more than the {limit} allowed")
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() - started > deadline:
            raise DownloadError(f"cannot download {url}: not finished within {deadline:g} s")
        chunk = resp.read(_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise DownloadError(f"cannot download {url}: more than the {limit} bytes allowed")
        chunks.append(chunk)
