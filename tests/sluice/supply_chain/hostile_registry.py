"""A registry that lies: a small OCI distribution server on loopback, for the bounds and redirect tests.

It serves whatever a test puts in `manifests` and `blobs`, counts every blob byte it sends and every
request it sees (with its scheme and Authorization header), and can misbehave on purpose: answer a
blob with more bytes than declared, redirect a blob elsewhere, demand Basic credentials.

With `tls=` the listening port speaks TLS *and* plain HTTP (a first byte of 0x16 is a TLS
handshake), so a redirect from https://127.0.0.1:PORT to http://127.0.0.1:PORT (same host and
port, only the scheme differs) reaches the same server, which records whether credentials came
along in clear text. Only the standard library; nothing here is mocked on the client side.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import socket
import ssl
import threading
from dataclasses import dataclass, field

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
_CHUNK = 64 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    scheme: str
    method: str
    path: str
    authorization: str | None


@dataclass
class Behaviour:
    manifests: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # reference -> (body, type)
    blobs: dict[str, bytes] = field(default_factory=dict)
    extra_bytes: dict[str, int] = field(default_factory=dict)  # digest -> bytes sent beyond the blob
    redirects: dict[str, str] = field(default_factory=dict)  # digest -> Location
    basic_auth: tuple[str, str] | None = None
    seen: list[Seen] = field(default_factory=list)
    blob_bytes_sent: int = 0
    blob_gets: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "hostile-registry/1"
    protocol_version = "HTTP/1.0"

    def log_message(self, *args) -> None:
        pass

    @property
    def behaviour(self) -> Behaviour:
        return self.server.behaviour  # type: ignore[attr-defined]

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _authorised(self) -> bool:
        expected = self.behaviour.basic_auth
        if expected is None:
            return True
        token = base64.b64encode(f"{expected[0]}:{expected[1]}".encode()).decode()
        if self.headers.get("Authorization") == f"Basic {token}":
            return True
        self._send(401, b"{}", {"WWW-Authenticate": 'Basic realm="hostile"'})
        return False

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        b = self.behaviour
        scheme = "https" if isinstance(self.connection, ssl.SSLSocket) else "http"
        with b.lock:
            b.seen.append(Seen(scheme, self.command, self.path, self.headers.get("Authorization")))
        if not self._authorised():
            return
        parts = self.path.split("?", 1)[0].split("/")
        if self.path.rstrip("/") == "/v2":
            self._send(200, b"{}")
        elif len(parts) >= 5 and parts[-2] == "manifests":
            found = b.manifests.get(parts[-1])
            if found is None:
                self._send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            else:
                headers = {"Content-Type": found[1], "Docker-Content-Digest": sha256(found[0])}
                self._send(200, found[0], headers)
        elif len(parts) >= 5 and parts[-2] == "blobs":
            self._blob(parts[-1], redirect="?" not in self.path)
        else:
            self._send(404)

    def _blob(self, digest: str, redirect: bool) -> None:
        """Serve (or redirect) a blob; a redirected-to URL with a query string is served, not redirected."""
        b = self.behaviour
        if redirect and digest in b.redirects:
            self._send(307, headers={"Location": b.redirects[digest]})
            return
        data = b.blobs.get(digest)
        if data is None:
            self._send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return
        extra = b.extra_bytes.get(digest, 0)
        self.send_response(200)
        self.send_header("Content-Length", str(len(data) + extra))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        with b.lock:
            b.blob_gets += 1
        if self.command == "HEAD":
            return
        view, filler = memoryview(data), bytes(_CHUNK)
        try:
            for start in range(0, len(data), _CHUNK):
                self._counted(view[start : start + _CHUNK])
            while extra > 0:
                self._counted(filler[: min(extra, _CHUNK)])
                extra -= _CHUNK
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass  # the client stopped reading: that is the point of most tests here

    def _counted(self, chunk: memoryview | bytes) -> None:
        self.wfile.write(chunk)
        with self.behaviour.lock:
            self.behaviour.blob_bytes_sent += len(chunk)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, behaviour: Behaviour, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behaviour = behaviour
        self.tls = tls

    def get_request(self):  # type: ignore[override]
        sock, address = self.socket.accept()
        if self.tls is not None:
            sock.settimeout(10)
            if sock.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello
                sock = self.tls.wrap_socket(sock, server_side=True)
        return sock, address


class HostileRegistry:
    """Start with `with HostileRegistry() as reg:`; `reg.host` is 127.0.0.1:PORT."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.behaviour = Behaviour()
        self._server = _Server(self.behaviour, tls)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HostileRegistry:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- content -------------------------------------------------------------------------------------

    def add_blob(self, data: bytes) -> str:
        digest = sha256(data)
        self.behaviour.blobs[digest] = data
        return digest

    def add_manifest(self, reference: str, doc: dict, media_type: str = OCI_MANIFEST) -> str:
        body = json.dumps(doc, separators=(",", ":")).encode()
        self.behaviour.manifests[reference] = (body, media_type)
        digest = sha256(body)
        self.behaviour.manifests.setdefault(digest, (body, media_type))
        return digest

    def add_image(self, label: bytes = b"model") -> str:
        """A small image manifest (never pulled as layers here); returns its digest."""
        config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": self.add_blob(config)},
            "layers": [{"mediaType": LAYER, "size": len(label), "digest": self.add_blob(label)}],
        }
        return self.add_manifest("v1", doc)

    def add_attachment(self, image_digest: str, suffix: str, layers: list[dict]) -> None:
        """A cosign .sig/.att manifest at sha256-<hex>.<suffix> with these layer descriptors."""
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": 2, "digest": self.add_blob(b"{}")},
            "layers": layers,
        }
        self.add_manifest(image_digest.replace(":", "-") + "." + suffix, doc)

    def blob_requests(self) -> list[Seen]:
        return [s for s in self.behaviour.seen if "/blobs/" in s.path]
