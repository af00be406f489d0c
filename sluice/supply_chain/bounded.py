"""Reading a `.sig`/`.att` image from a registry nobody trusts: counted, sized, one layer at a time.

Whoever can push a tag controls these images, so nothing about them may decide how much the
verifier holds (CVE-2023-46737 was this bug in cosign). The bounds (sluice.supply_chain.constants):
- more than `max_layers` layers: the whole attachment image is refused, from its manifest alone;
- a layer whose declared size is over `layer_bytes`, or over what is left of `total_bytes` for the
  image, is not fetched; a registry that answers with more bytes than declared is hung up on;
- layers are fetched one at a time, when the verifier asks for them, and dropped after their
  verdict, so memory holds one layer whatever the layer count.
Every such layer is refused with its reason; the image is refused only when no layer is left that
counts, so a hostile extra layer cannot turn a good signature into an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sluice.errors import SluiceError
from sluice.supply_chain.constants import (
    ATTACHMENT_LAYER_LIMIT,
    IMAGE_MANIFEST_TYPES,
    MAX_ATTACHMENT_LAYERS,
    READ_BUDGET_BYTES,
)
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.refs import DIGEST_RE
from sluice.supply_chain.transport import RegistryIntegrityError
from sluice.supply_chain.verdicts import LayerRejected, VerificationError

_SHOWN_GROUPS = 6


@dataclass(frozen=True)
class Bounds:
    max_layers: int = MAX_ATTACHMENT_LAYERS
    layer_bytes: int = ATTACHMENT_LAYER_LIMIT
    total_bytes: int = READ_BUDGET_BYTES

    def __post_init__(self) -> None:
        if min(self.max_layers, self.layer_bytes, self.total_bytes) < 1:
            raise SluiceError("attachment bounds must be positive (e.g. --max-signatures 1 or more)")


class BudgetSpent(LayerRejected):
    """Not fetched because the image's read budget is used up: unknown, not merely invalid."""


@dataclass(frozen=True)
class Layer:
    """One layer as the attachment manifest declares it (nothing fetched yet)."""

    index: int
    media_type: str
    digest: str
    size: Any
    annotations: dict[str, str]


def _layer(index: int, entry: Any) -> Layer:
    entry = entry if isinstance(entry, dict) else {}
    raw = entry.get("annotations")
    annotations = {k: v for k, v in raw.items() if isinstance(v, str)} if isinstance(raw, dict) else {}
    return Layer(
        index, str(entry.get("mediaType", "")), str(entry.get("digest", "")), entry.get("size"), annotations
    )


def attachment_layers(
    client: RegistryClient, repository: str, tag: str, what: str, bounds: Bounds
) -> list[Layer] | None:
    """The layers of the attachment image at `tag`, or None when there is none; refuses it as a whole
    when it is unreadable, not cosign's, or holds more layers than `bounds.max_layers`."""
    try:
        manifest = client.get_manifest(repository, tag)
    except RegistryIntegrityError as exc:  # too big, or not what was asked for
        raise VerificationError(f"{what} image {tag}: {exc}") from exc
    if manifest is None:
        return None
    try:
        doc = manifest.json()
    except SluiceError as exc:
        raise VerificationError(f"{what} image {tag}: {exc}") from exc
    if manifest.media_type not in IMAGE_MANIFEST_TYPES:
        raise VerificationError(
            f"{what} tag {tag} holds a {manifest.media_type or 'untyped'} manifest, not cosign's"
        )
    entries = doc.get("layers") or []
    if not isinstance(entries, list):
        raise VerificationError(f"{what} image {tag} has a malformed layer list")
    if len(entries) > bounds.max_layers:
        raise VerificationError(
            f"{what} image {tag} holds {len(entries)} layers, more than the {bounds.max_layers} allowed "
            "(--max-signatures); refusing all of them unread"
        )
    return [_layer(index, entry) for index, entry in enumerate(entries, start=1)]


class Reader:
    """Fetches declared layers of one attachment image, one at a time, within its byte budget."""

    def __init__(self, client: RegistryClient, repository: str, bounds: Bounds) -> None:
        self.client, self.repository, self.bounds = client, repository, bounds
        self.remaining = bounds.total_bytes

    def fetch(self, layer: Layer) -> bytes:
        """The layer's bytes, exactly its declared size and digest; LayerRejected otherwise."""
        size, limit = layer.size, self.bounds.layer_bytes
        if not DIGEST_RE.match(layer.digest):
            raise LayerRejected(f"digest {layer.digest[:80]!r} is not a sha256 digest (not fetched)")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise LayerRejected(f"declared size {size!r} is not a byte count (not fetched)")
        if size > limit:
            raise LayerRejected(
                f"declared size {size} bytes is over the {limit}-byte limit for one layer (not fetched)"
            )
        if size > self.remaining:
            raise BudgetSpent(
                f"not fetched: the {self.bounds.total_bytes}-byte read budget for this image is spent"
            )
        self.remaining -= size
        try:
            data = self.client.get_blob(self.repository, layer.digest, limit=size)
        except SluiceError as exc:
            raise LayerRejected(f"blob unreadable: {exc}") from exc
        if data is None:
            raise LayerRejected("blob missing from the registry")
        return data


def summarise(what: str, skipped: list[tuple[int, str]]) -> str:
    """One line for many rejected layers: runs of the same reason become `layers 4-10: reason`."""
    groups: list[list[Any]] = []
    for index, reason in skipped:
        if groups and groups[-1][2] == reason and groups[-1][1] == index - 1:
            groups[-1][1] = index
        else:
            groups.append([index, index, reason])
    parts = [f"{what} layer {a}: {r}" if a == b else f"{what} layers {a}-{b}: {r}" for a, b, r in groups]
    if len(parts) > _SHOWN_GROUPS:
        parts = [*parts[:_SHOWN_GROUPS], f"and {len(parts) - _SHOWN_GROUPS} more"]
    return "; ".join(parts) or "no layers"
