"""Write cosign-compatible tag-based signatures (`.sig`) and attestations (`.att`).

For the laptop loop and the tests; Tekton runs the real cosign CLI. Like `cosign sign` and
`cosign attest` (without `--replace`), a new layer is appended to whatever the tag already holds,
so several signers and several gate runs can coexist. The read-modify-write of the tag is not
atomic, exactly as with cosign: do not sign one digest from two places at once.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from sluice.errors import SluiceError
from sluice.supply_chain import dsse, keys
from sluice.supply_chain.constants import (
    ATTESTATION_TAG_SUFFIX,
    DSSE_MEDIA_TYPE,
    IMAGE_MANIFEST_TYPES,
    OCI_CONFIG,
    OCI_MANIFEST,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURE_TAG_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.oci import RegistryClient, sha256_digest
from sluice.supply_chain.payload import build_payload
from sluice.supply_chain.refs import ImageRef, attachment_tag, parse_image_ref


def _client(ref: ImageRef, docker_config: str | None, allow_insecure_loopback: bool) -> RegistryClient:
    return RegistryClient(
        ref.registry, docker_config=docker_config, allow_insecure_loopback=allow_insecure_loopback
    )


def _require_image(client: RegistryClient, ref: ImageRef) -> str:
    digest = ref.require_digest()
    if client.get_manifest(ref.repository, digest) is None:
        raise SluiceError(f"image {ref} not found in the registry; push it before signing")
    return digest


def _append_layer(
    client: RegistryClient, ref: ImageRef, tag: str, blob: bytes, media_type: str, annotations: dict[str, str]
) -> str:
    """Add one layer to the attachment image at `tag` (creating it), push, return the manifest digest."""
    existing = client.get_manifest(ref.repository, tag)
    layers: list[dict[str, Any]] = []
    if existing is not None:
        if existing.media_type not in IMAGE_MANIFEST_TYPES:
            raise SluiceError(
                f"{ref.name}:{tag} holds a {existing.media_type} manifest; refusing to overwrite it"
            )
        layers = list(existing.json().get("layers") or [])
    digest = client.put_blob(ref.repository, blob)
    layer = {"mediaType": media_type, "size": len(blob), "digest": digest, "annotations": annotations}
    if layer not in layers:
        layers.append(layer)
    config = json.dumps(
        {
            "architecture": "",
            "os": "",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [entry["digest"] for entry in layers]},
        },
        separators=(",", ":"),
    ).encode()
    config_digest = client.put_blob(ref.repository, config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "size": len(config), "digest": config_digest},
            "layers": layers,
        },
        separators=(",", ":"),
    ).encode()
    return client.put_manifest(ref.repository, tag, manifest, OCI_MANIFEST)


def sign_image(
    image_ref: str,
    private_key: keys.PrivateKey,
    *,
    docker_config: str | None = None,
    allow_insecure_loopback: bool = False,
    ed25519_mode: keys.Ed25519Mode = "ph",
    optional: dict[str, Any] | None = None,
) -> dict[str, Any]:
    ref = parse_image_ref(image_ref)
    client = _client(ref, docker_config, allow_insecure_loopback)
    digest = _require_image(client, ref)
    payload = build_payload(ref.name, digest, optional)
    signature = keys.sign_bytes(private_key, payload, ed25519_mode)
    tag = attachment_tag(digest, SIGNATURE_TAG_SUFFIX)
    manifest = _append_layer(
        client,
        ref,
        tag,
        payload,
        SIMPLE_SIGNING_MEDIA_TYPE,
        {SIGNATURE_ANNOTATION: base64.b64encode(signature).decode()},
    )
    return {"image": str(ref), "tag": tag, "manifest": manifest, "payload_digest": sha256_digest(payload)}


def attest_image(
    image_ref: str,
    private_key: keys.PrivateKey,
    predicate: Any,
    predicate_type: str,
    *,
    docker_config: str | None = None,
    allow_insecure_loopback: bool = False,
    ed25519_mode: keys.Ed25519Mode = "ph",
) -> dict[str, Any]:
    """`cosign attest --type URI --predicate FILE` in the tag-based format (DSSE in a `.att` layer)."""
    ref = parse_image_ref(image_ref)
    client = _client(ref, docker_config, allow_insecure_loopback)
    digest = _require_image(client, ref)
    statement = dsse.build_statement(ref.name, digest.split(":", 1)[1], predicate_type, predicate)
    envelope = dsse.build_envelope(statement, lambda data: keys.sign_bytes(private_key, data, ed25519_mode))
    tag = attachment_tag(digest, ATTESTATION_TAG_SUFFIX)
    manifest = _append_layer(
        client,
        ref,
        tag,
        envelope,
        DSSE_MEDIA_TYPE,
        {PREDICATE_TYPE_ANNOTATION: predicate_type, SIGNATURE_ANNOTATION: ""},
    )
    return {"image": str(ref), "tag": tag, "manifest": manifest, "predicate_type": predicate_type}
