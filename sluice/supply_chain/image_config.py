"""An image's labels, read from its config blob in the registry, without pulling any layer.

`sluice submit` uses it to compare the lock a trainer image was built from (its
`dev.sluice.lock.sha256` label) with the checkout's. The manifest is fetched by digest and the
config blob by its digest, and both are hashed and compared (the OCI client refuses anything else),
so the labels are the ones of exactly the image that will run.
"""

from __future__ import annotations

import json

from sluice.errors import SluiceError
from sluice.supply_chain.constants import DOCKER_MANIFEST_LIST, OCI_INDEX
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.refs import parse_image_ref

CONFIG_LIMIT = 4 * 1024 * 1024
# For a multi-platform index: the platform the CUDA images are built for first (every platform of
# one build carries the same labels; the first entry is the fallback).
PREFERRED_PLATFORM = ("linux", "amd64")


def _platform_digest(index: dict, ref: str) -> str:
    entries = [m for m in index.get("manifests") or [] if isinstance(m, dict) and m.get("digest")]
    if not entries:
        raise SluiceError(f"image index {ref} lists no manifests")
    for entry in entries:
        platform = entry.get("platform") or {}
        if (platform.get("os"), platform.get("architecture")) == PREFERRED_PLATFORM:
            return str(entry["digest"])
    return str(entries[0]["digest"])


def image_labels(reference: str, *, docker_config: str | None = None, allow_insecure_loopback: bool = False,
                 client: RegistryClient | None = None) -> dict[str, str]:
    """The `config.Labels` of image `reference` (which must name a digest)."""
    ref = parse_image_ref(reference)
    digest = ref.require_digest()
    client = client or RegistryClient(
        ref.registry, docker_config=docker_config, allow_insecure_loopback=allow_insecure_loopback
    )
    manifest = client.get_manifest(ref.repository, digest)
    if manifest is None:
        raise SluiceError(f"image {reference} not found in registry {ref.registry}")
    doc = manifest.json()
    if manifest.media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) or "manifests" in doc:
        platform_digest = _platform_digest(doc, reference)
        manifest = client.get_manifest(ref.repository, platform_digest)
        if manifest is None:
            raise SluiceError(f"image {reference}: platform manifest {platform_digest} not found")
        doc = manifest.json()
    config_digest = (doc.get("config") or {}).get("digest")
    if not isinstance(config_digest, str):
        raise SluiceError(f"image {reference} has no config blob in its manifest")
    blob = client.get_blob(ref.repository, config_digest, limit=CONFIG_LIMIT)
    if blob is None:
        raise SluiceError(f"image {reference}: config blob {config_digest} not found")
    try:
        config = json.loads(blob)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SluiceError(f"image {reference}: config blob is not JSON") from exc
    labels = (config.get("config") or {}).get("Labels") if isinstance(config, dict) else None
    return {str(k): str(v) for k, v in (labels or {}).items()}
