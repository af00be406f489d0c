"""Image references: `[registry/]repository[:tag][@sha256:<64 hex>]`, normalised like Docker does.

Signatures bind a digest, never a tag, so everything downstream asks `require_digest()` first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sluice.errors import SluiceError

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
_REPO_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_REFERENCE = "index.docker.io"  # go-containerregistry's name.DefaultRegistry


@dataclass(frozen=True)
class ImageRef:
    registry: str  # host[:port] as written (docker.io for Docker Hub)
    repository: str  # path inside the registry, e.g. library/busybox
    tag: str | None = None
    digest: str | None = None

    @property
    def api_host(self) -> str:
        """The host that serves the distribution API (Docker Hub's differs from its name)."""
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def name(self) -> str:
        """registry/repository as written (docker.io for Docker Hub): what users and logs read."""
        return f"{self.registry}/{self.repository}"

    @property
    def docker_reference(self) -> str:
        """What cosign writes as critical.identity.docker-reference and the in-toto subject name.

        go-containerregistry's Repository.Name(): Docker Hub is `index.docker.io` (cosign writes
        `index.docker.io/library/busybox`), every other registry as written. One divergence: a
        reference spelled `registry-1.docker.io/...` is Docker Hub here, while go-containerregistry
        keeps that host name.
        """
        registry = DOCKER_HUB_REFERENCE if self.registry == DOCKER_HUB else self.registry
        return f"{registry}/{self.repository}"

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text

    def require_digest(self) -> str:
        if not self.digest:
            raise SluiceError(
                f"image reference {self} has no digest: signatures bind a digest, not a tag; "
                "use IMAGE@sha256:<64 hex>"
            )
        return self.digest

    def with_digest(self, digest: str) -> ImageRef:
        return ImageRef(self.registry, self.repository, None, digest)


def _looks_like_registry(component: str) -> bool:
    return "." in component or ":" in component or component == "localhost"


def parse_image_ref(text: str) -> ImageRef:
    """Parse and validate a reference; raises SluiceError naming what is wrong with it."""
    original = text
    text = text.strip()
    if not text or any(ch.isspace() for ch in text):
        raise SluiceError(f"invalid image reference {original!r}: empty or contains whitespace")
    if "://" in text:
        raise SluiceError(f"invalid image reference {original!r}: drop the URL scheme")
    digest = None
    if "@" in text:
        text, digest = text.split("@", 1)
        if not DIGEST_RE.match(digest):
            raise SluiceError(
                f"invalid image reference {original!r}: digest must be sha256: followed by 64 lowercase hex"
            )
    first, _, rest = text.partition("/")
    if rest and _looks_like_registry(first):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, text
    if registry in ("index.docker.io", "registry-1.docker.io"):
        registry = DOCKER_HUB
    tag = None
    last_slash = path.rfind("/")
    colon = path.rfind(":")
    if colon > last_slash:
        path, tag = path[:colon], path[colon + 1 :]
        if not _TAG_RE.match(tag):
            raise SluiceError(f"invalid image reference {original!r}: bad tag {tag!r}")
    if registry == DOCKER_HUB and "/" not in path:
        path = f"library/{path}"
    if not path or not all(_REPO_COMPONENT.match(part) for part in path.split("/")):
        raise SluiceError(f"invalid image reference {original!r}: bad repository name {path!r}")
    return ImageRef(registry, path, tag, digest)


def attachment_tag(digest: str, suffix: str) -> str:
    """cosign's tag for an attachment of `digest`: sha256:<hex> -> sha256-<hex>.<suffix>."""
    if not DIGEST_RE.match(digest):
        raise SluiceError(f"not a sha256 digest: {digest!r}")
    return digest.replace(":", "-", 1) + "." + suffix
