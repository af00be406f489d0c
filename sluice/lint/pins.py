"""Schemas by pin: the upstream files `sluice lint` validates against, fetched once and reused offline.

A fresh clone has no CRD directory, and kubeconform users expect schemas to come from a pinned
location and a cache. `crd-pins.yaml` (beside this module) names every file with its upstream URL
and sha256; `resolve()` makes each one available as `<cache>/<sha256>`: already there and intact,
or downloaded (from upstream or from a mirror laid out by name), checked against the pin, and
written atomically. Nothing unverified is ever cached or used, and `offline=True` never touches
the network: it says which files are missing instead.

Errors: a file that cannot be fetched is a `SluiceError` naming the URL (exit 2); bytes whose
sha256 differs from the pin are `Refused`, naming the file and both digests (exit 1).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

import yaml

from sluice.atomic import write_bytes
from sluice.digest import sha256_file
from sluice.errors import Refused, SluiceError
from sluice.lint.fetch import download

PINS_FILE = Path(__file__).with_name("crd-pins.yaml")
PINS_SHOWN = "sluice/lint/crd-pins.yaml"
MIRROR_ENV = "SLUICE_CRD_MIRROR"
CACHE_ENV = "SLUICE_CRD_CACHE"
CRD_FORMAT = "crd"
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_PARALLEL_DOWNLOADS = 4
_OFFLINE_FIX = "run `sluice lint` once with network (or with --crd-mirror URL), or pass --crds DIR"


@dataclass(frozen=True)
class Pin:
    """One upstream file: where it lives, what its bytes hash to, and what it defines."""

    name: str  # relative path under a mirror, e.g. tekton-pipeline/task.yaml
    url: str
    sha256: str
    kinds: tuple[str, ...]
    source: Mapping[str, str] = field(default_factory=dict)
    format: str = CRD_FORMAT

    @property
    def is_crd(self) -> bool:
        return self.format == CRD_FORMAT

    def location(self, mirror: str | None) -> str:
        """Where to fetch it: `<mirror>/<name>` when a mirror is set, else the upstream URL."""
        return f"{mirror.rstrip('/')}/{self.name}" if mirror else self.url


def _pin(entry: object, index: int) -> Pin:
    where = f"{PINS_SHOWN} entry {index + 1}"
    if not isinstance(entry, dict):
        raise SluiceError(f"{where} is not a mapping")
    name, url, sha = entry.get("name"), entry.get("url"), entry.get("sha256")
    path = PurePosixPath(str(name or ""))
    if not name or path.is_absolute() or ".." in path.parts:
        raise SluiceError(f"{where}: name {name!r} must be a relative path without '..'")
    if not isinstance(url, str) or not url.startswith("https://"):
        raise SluiceError(f"{where} ({name}): url must be https, got {url!r}")
    if not isinstance(sha, str) or not _SHA256.match(sha):
        raise SluiceError(f"{where} ({name}): sha256 must be 64 lowercase hex digits")
    kinds = tuple(map(str, entry.get("kinds") or []))
    fmt = str(entry.get("format", CRD_FORMAT))
    return Pin(str(name), url, sha, kinds, dict(entry.get("source") or {}), fmt)


@lru_cache(maxsize=4)
def load_pins(path: Path = PINS_FILE) -> tuple[Pin, ...]:
    """Every pin in the pins file, validated (names unique, sha256 well-formed, URLs https)."""
    try:
        entries = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SluiceError(f"cannot read the schema pins {path}: {exc}") from exc
    if not isinstance(entries, list):
        raise SluiceError(f"{PINS_SHOWN} must be a list of pins")
    pins = tuple(_pin(entry, i) for i, entry in enumerate(entries))
    names = [p.name for p in pins]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SluiceError(f"{PINS_SHOWN} pins {', '.join(duplicates)} more than once")
    return pins


def cache_dir() -> Path:
    """$SLUICE_CRD_CACHE, else $XDG_CACHE_HOME/sluice/crds, else ~/.cache/sluice/crds."""
    explicit = os.environ.get(CACHE_ENV)
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sluice" / "crds"


def mirror_from_env() -> str | None:
    return os.environ.get(MIRROR_ENV) or None


def cached(pin: Pin, cache: Path) -> Path | None:
    """The cached copy if present and intact; a copy that no longer matches its pin is removed."""
    path = cache / pin.sha256
    if not path.is_file():
        return None
    if sha256_file(path) == pin.sha256:
        return path
    path.unlink(missing_ok=True)  # damaged on disk since it was verified: fetch it again
    return None


@dataclass(frozen=True)
class Resolved:
    """Every pinned file as a verified path in the cache."""

    cache: Path
    files: dict[str, Path]  # pin name -> <cache>/<sha256>
    downloaded: tuple[str, ...] = ()

    def crd_files(self, pins: tuple[Pin, ...]) -> dict[str, Path]:
        """Only the CRD manifests (not OpenAPI documents), by name: what the CRD index loads."""
        return {p.name: self.files[p.name] for p in pins if p.is_crd and p.name in self.files}


def _describe_missing(names: list[str]) -> str:
    shown = ", ".join(names[:5])
    return shown + (f" and {len(names) - 5} more" if len(names) > 5 else "")


def _fetch_one(pin: Pin, mirror: str | None, cache: Path) -> Path:
    url = pin.location(mirror)
    data = download(url)
    actual = hashlib.sha256(data).hexdigest()
    if actual != pin.sha256:
        raise Refused(
            f"{pin.name} from {url} has sha256 {actual}, but {PINS_SHOWN} pins {pin.sha256}: "
            "refusing it (not cached)"
        )
    return write_bytes(cache / pin.sha256, data)


def resolve(
    pins: tuple[Pin, ...] | None = None,
    *,
    offline: bool = False,
    mirror: str | None = None,
    cache: Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> Resolved:
    """Make every pin available in the cache, downloading what is missing unless `offline`."""
    pins = load_pins() if pins is None else pins
    cache = cache_dir() if cache is None else cache
    files = {pin.name: path for pin in pins if (path := cached(pin, cache)) is not None}
    missing = [pin for pin in pins if pin.name not in files]
    if not missing:
        return Resolved(cache, files)
    if offline:
        names = _describe_missing([p.name for p in missing])
        raise SluiceError(
            f"--offline: {len(missing)} pinned schema file(s) are not in the cache {cache} ({names}); "
            + _OFFLINE_FIX
        )
    if progress:
        origin = f"mirror {mirror}" if mirror else "their pinned upstream URLs"
        progress(f"sluice lint: fetching {len(missing)} pinned schema file(s) from {origin} into {cache}")
    with ThreadPoolExecutor(max_workers=_PARALLEL_DOWNLOADS) as pool:
        jobs = [(pin, pool.submit(_fetch_one, pin, mirror, cache)) for pin in missing]
    errors: list[BaseException] = []
    for pin, job in jobs:
        exc = job.exception()
        if exc is None:
            files[pin.name] = job.result()
        else:
            errors.append(exc)
    if errors:
        # A refused (tampered) file outranks an unreachable one: it is the finding that matters.
        first = next((e for e in errors if isinstance(e, Refused)), errors[0])
        if isinstance(first, SluiceError):
            raise SluiceError(f"{first}; to lint without network use --offline (after one successful "
                              "fetch), --crd-mirror URL or --crds DIR") from first
        raise first
    return Resolved(cache, files, tuple(p.name for p in missing))


def pin_named(name: str, pins: tuple[Pin, ...] | None = None) -> Pin:
    pins = load_pins() if pins is None else pins
    for pin in pins:
        if pin.name == name:
            return pin
    raise SluiceError(f"no schema named {name!r} is pinned in {PINS_SHOWN}")


def pinned_file(name: str, *, offline: bool = False, mirror: str | None = None,
                cache: Path | None = None) -> Path:
    """One pinned file (e.g. `katib/swagger.json`) as a verified path, fetched on first use.

    The mirror defaults to $SLUICE_CRD_MIRROR, as for `sluice lint`.
    """
    pin = pin_named(name)
    resolved = resolve((pin,), offline=offline, mirror=mirror or mirror_from_env(), cache=cache)
    return resolved.files[name]
