"""Schemas by pin: the pins file, the cache, the mirror and the bounds on what a server can make us read.

Every fetch here is a real HTTP download from a loopback server; every sha256 is really computed.
"""

from __future__ import annotations

import hashlib
import http.server
import re
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.errors import Refused, SluiceError
from sluice.lint import fetch, pins
from sluice.lint.crds import CrdSource
from tests.conftest import serve_directory

SOURCES_ROW = re.compile(r"^\| ([\w-]+)/ \| ([\w-]+/[\w-]+) \| .*? \| ([0-9a-f]{40})")


# --- the pins file ---------------------------------------------------------------------------------


def test_every_shared_crd_file_is_pinned_with_its_real_sha256(crds_dir: Path) -> None:
    """The pins are the upstream files' digests: the shared copies are unchanged upstream files."""
    files = {str(p.relative_to(crds_dir)) for p in crds_dir.rglob("*") if p.is_file()} - {"SOURCES.md"}
    all_pins = pins.load_pins()
    assert {p.name for p in all_pins} == files
    for pin in all_pins:
        assert hashlib.sha256((crds_dir / pin.name).read_bytes()).hexdigest() == pin.sha256, pin.name


def test_pins_name_the_commits_and_repositories_sources_md_records(crds_dir: Path) -> None:
    rows = {}
    for line in (crds_dir / "SOURCES.md").read_text().splitlines():
        match = SOURCES_ROW.match(line)
        if match:
            rows[match.group(1)] = (match.group(2), match.group(3))
    for pin in pins.load_pins():
        repository, commit = rows[pin.name.split("/")[0]]
        assert (pin.source["repository"], pin.source["commit"]) == (repository, commit), pin.name
        ref = pin.source.get("tag") or commit
        base = f"https://raw.githubusercontent.com/{repository}/{ref}/{pin.source['path']}"
        assert pin.url == base, pin.name


def test_every_kind_the_repository_uses_is_pinned(pinned_crds: CrdSource) -> None:
    index = pinned_crds.load()
    assert index is not None and index.problems == []
    declared = {tuple(k.split()) for p in pins.load_pins() if p.is_crd for k in p.kinds}
    assert declared == set(index.kinds)  # the `kinds` lists say exactly what each file defines


@pytest.mark.parametrize(
    ("entry", "fragment"),
    [
        ({"name": "../x.yaml", "url": "https://e/x", "sha256": "a" * 64}, "relative path"),
        ({"name": "x.yaml", "url": "http://e/x", "sha256": "a" * 64}, "url must be https"),
        ({"name": "x.yaml", "url": "https://e/x", "sha256": "ABC"}, "64 lowercase hex"),
    ],
)
def test_a_malformed_pin_is_named(tmp_path: Path, entry: dict, fragment: str) -> None:
    import yaml

    path = tmp_path / "pins.yaml"
    path.write_text(yaml.safe_dump([entry]))
    with pytest.raises(SluiceError, match=fragment):
        pins.load_pins(path)


# --- resolving through a mirror into the cache ------------------------------------------------------


@pytest.fixture
def one_pin(tmp_path: Path) -> tuple[pins.Pin, Path]:
    """A small pinned file in a mirror directory of its own."""
    mirror = tmp_path / "mirror"
    (mirror / "demo").mkdir(parents=True)
    body = b"apiVersion: v1\nkind: List\nitems: []\n"
    (mirror / "demo" / "crd.yaml").write_bytes(body)
    pin = pins.Pin("demo/crd.yaml", "https://example.invalid/crd.yaml", hashlib.sha256(body).hexdigest(), ())
    return pin, mirror


def test_fetched_once_then_reused_offline(one_pin, tmp_path: Path) -> None:
    pin, mirror = one_pin
    cache = tmp_path / "cache"
    with serve_directory(mirror) as url:
        first = pins.resolve((pin,), mirror=url, cache=cache)
    assert first.downloaded == ("demo/crd.yaml",) and first.files["demo/crd.yaml"] == cache / pin.sha256
    again = pins.resolve((pin,), offline=True, cache=cache)  # the server is gone: no network needed
    assert again.downloaded == () and again.files == first.files


def test_a_tampered_mirror_file_is_refused_and_not_cached(one_pin, tmp_path: Path) -> None:
    pin, mirror = one_pin
    (mirror / "demo" / "crd.yaml").write_bytes(b"apiVersion: v1\nkind: List\nitems: [1]\n")
    with serve_directory(mirror) as url, pytest.raises(Refused) as refused:
        pins.resolve((pin,), mirror=url, cache=tmp_path / "cache")
    actual = hashlib.sha256((mirror / "demo" / "crd.yaml").read_bytes()).hexdigest()
    assert f"demo/crd.yaml from {url}demo/crd.yaml has sha256 {actual}" in str(refused.value)
    assert pin.sha256 in str(refused.value)
    assert not (tmp_path / "cache" / pin.sha256).exists()


def test_a_damaged_cache_entry_is_fetched_again(one_pin, tmp_path: Path) -> None:
    pin, mirror = one_pin
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / pin.sha256).write_bytes(b"bit rot")
    with pytest.raises(SluiceError, match="not in the cache"):
        pins.resolve((pin,), offline=True, cache=cache)
    with serve_directory(mirror) as url:
        resolved = pins.resolve((pin,), mirror=url, cache=cache)
    assert resolved.downloaded == ("demo/crd.yaml",)
    assert hashlib.sha256((cache / pin.sha256).read_bytes()).hexdigest() == pin.sha256


def test_offline_names_what_is_missing_and_how_to_get_it(tmp_path: Path) -> None:
    with pytest.raises(SluiceError) as error:
        pins.resolve(offline=True, cache=tmp_path / "empty")
    message = str(error.value)
    count = len(pins.load_pins())
    assert message.startswith(f"--offline: {count} pinned schema file(s) are not in the cache")
    assert "tekton-pipeline/customrun.yaml" in message and "--crds DIR" in message


def test_an_unreachable_mirror_names_the_url_and_the_offline_flag(one_pin, tmp_path: Path) -> None:
    pin, _ = one_pin
    with serve_directory(tmp_path) as url:
        pass  # the port is closed again
    with pytest.raises(SluiceError) as error:
        pins.resolve((pin,), mirror=url, cache=tmp_path / "cache")
    assert str(error.value).startswith(f"cannot download {url}demo/crd.yaml: ")
    assert "--offline" in str(error.value)


def test_pinned_file_makes_katibs_openapi_document_available(pinned_crds: CrdSource) -> None:
    path = pins.pinned_file("katib/swagger.json", offline=True, cache=pinned_crds.directory)
    pin = pins.pin_named("katib/swagger.json")
    assert path == pinned_crds.directory / pin.sha256 and not pin.is_crd
    assert "katib/swagger.json" not in (pinned_crds.files or {})  # not loaded as a CRD
    with pytest.raises(SluiceError, match=r"no schema named 'katib/nope\.json'"):
        pins.pinned_file("katib/nope.json", offline=True)


# --- what a server can make us read -------------------------------------------------------------------


class _Hostile(http.server.BaseHTTPRequestHandler):
    """Redirect loops, redirects to file:, bodies over the limit, with or without Content-Length."""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        routes = {
            "/loop": (302, {"Location": "/loop"}, b""),
            "/to-file": (302, {"Location": "file:///etc/passwd"}, b""),
            "/to-ftp": (302, {"Location": "ftp://127.0.0.1/crd.yaml"}, b""),
            "/hop": (301, {"Location": "/small"}, b""),
            "/small": (200, {"Content-Length": "5"}, b"hello"),
            "/declared-big": (200, {"Content-Length": str(10**9)}, b""),
        }
        if self.path == "/streamed-big":
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"x" * 1024)
            return
        status, headers, body = routes.get(self.path, (404, {}, b""))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def hostile() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_a_same_scheme_redirect_is_followed(hostile: str) -> None:
    assert fetch.download(f"{hostile}/hop") == b"hello"


@pytest.mark.parametrize(
    ("path", "limit", "fragment"),
    [
        ("/loop", fetch.MAX_BYTES, "HTTP 302"),
        ("/to-file", fetch.MAX_BYTES, "Redirection to url 'file:///etc/passwd' is not allowed"),
        ("/to-ftp", fetch.MAX_BYTES, "not an http(s) URL"),
        ("/declared-big", fetch.MAX_BYTES, "more than the"),
        ("/streamed-big", 4096, "more than the 4096 bytes allowed"),
        ("/missing", fetch.MAX_BYTES, "HTTP 404"),
    ],
)
def test_what_a_server_cannot_make_us_do(hostile: str, path: str, limit: int, fragment: str) -> None:
    with pytest.raises(fetch.DownloadError, match=re.escape(fragment)) as error:
        fetch.download(f"{hostile}{path}", limit=limit)
    message = str(error.value)
    assert message.startswith(f"cannot download {hostile}{path}") or message.startswith(f"{hostile}{path}")


def test_https_is_never_followed_down_to_plain_http() -> None:
    handler = fetch._CarefulRedirects()
    request = urllib.request.Request("https://example.invalid/a")
    with pytest.raises(fetch.DownloadError, match="from https to plain http"):
        handler.redirect_request(request, None, 302, "Found", {}, "http://example.invalid/a")
    followed = handler.redirect_request(request, None, 302, "Found", {}, "https://mirror.invalid/a")
    assert followed.full_url == "https://mirror.invalid/a"


def test_only_http_urls_are_fetched() -> None:
    with pytest.raises(fetch.DownloadError, match="only http"):
        fetch.download("file:///etc/passwd")
