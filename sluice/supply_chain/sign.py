"""Write cosign-compatible tag-based signatures (`.sig`) and attestations (`.att`).

For the laptop loop and the tests; Tekton runs the real cosign CLI. Like `cosign sign` and
`cosign attest` (without `--replace`), a new layer is appended to whatever the tag already holds,
so several signers and several gate runs can coexist. The bytes pushed (payload, config blob,
manifest) are cosign v2's for the same payload and signature (sluice.supply_chain.attachments).
The read-modify-write of the tag is not atomic, exactly as with cosign: do not sign one digest
from two places at once.
"""

from __future__ import annotations

import base64
from typing import Any

from sluice.errors import SluiceError
from sluice.supply_chain import attachments, dsse, keys
from sluice.supply_chain.constants import (
    ATTESTATION_TAG_SUFFIX,
    DSSE_MEDIA_TYPE,
    IMAGE_MANIFEST_TYPES,
    MAX_ATTACHMENT_LAYERS,
    OCI_MANIFEST,
    PREDICATE_TYPE_ANNOTATION,
    SIGNATURE_ANNOTATION,
    SIGNATURE_TAG_SUFFIX,
    SIMPLE_SIGNING_MEDIA_TYPE,
)
from sluice.supply_chain.oci import MANIFEST_LIMIT, Manifest, RegistryClient, sha256_digest
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


def _existing(
    client: RegistryClient, ref: ImageRef, tag: str
) -> tuple[Manifest, dict[str, Any], bytes] | None:
    """The attachment image at `tag` (manifest, parsed, config blob), or None when there is none yet."""
    existing = client.get_manifest(ref.repository, tag)
    if existing is None:
        return None
    if existing.media_type not in IMAGE_MANIFEST_TYPES:
        raise SluiceError(
            f"{ref.name}:{tag} holds a {existing.media_type} manifest; refusing to overwrite it"
        )
    doc = existing.json()
    layers = doc.get("layers") or []
    if len(layers) >= MAX_ATTACHMENT_LAYERS:
        raise SluiceError(
            f"{ref.name}:{tag} already holds {len(layers)} layers, the most cosign reads "
            f"({MAX_ATTACHMENT_LAYERS}); remove old signatures before adding one"
        )
    config_digest = str((doc.get("config") or {}).get("digest", ""))
    config = client.get_blob(ref.repository, config_digest, limit=MANIFEST_LIMIT)
    if config is None:
        raise SluiceError(f"{ref.name}:{tag} names config blob {config_digest}, which the registry lacks")
    return existing, doc, config


def append_attachment(
    client: RegistryClient, ref: ImageRef, tag: str, blob: bytes, media_type: str, annotations: dict[str, str]
) -> str:
    """Add one layer to the attachment image at `tag` (creating it), push, return the manifest digest.

    The same layer (blob and annotations) twice is kept once, like cosign's duplicate detector.
    """
    found = _existing(client, ref, tag)
    existing, manifest, config = found if found else (None, None, None)
    layer = attachments.descriptor(media_type, blob, annotations)
    if existing is not None and layer in (manifest.get("layers") or []):
        return existing.digest
    client.put_blob(ref.repository, blob)
    try:
        body, config_blob = attachments.append_layers(manifest, config, [layer])
    except ValueError as exc:
        raise SluiceError(f"{ref.name}:{tag}: {exc}") from exc
    client.put_blob(ref.repository, config_blob)
    return client.put_manifest(ref.repository, tag, body, (manifest or {}).get("mediaType") or OCI_MANIFEST)


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
    payload = build_payload(ref.docker_reference, digest, optional)
    signature = keys.sign_bytes(private_key, payload, ed25519_mode)
    tag = attachment_tag(digest, SIGNATURE_TAG_SUFFIX)
    manifest = append_attachment(
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
    statement = dsse.build_statement(ref.docker_reference, digest.split(":", 1)[1], predicate_type, predicate)
    envelope = dsse.build_envelope(statement, lambda data: keys.sign_bytes(private_key, data, ed25519_mode))
    tag = attachment_tag(digest, ATTESTATION_TAG_SUFFIX)
    manifest = append_attachment(
        client,
        ref,
        tag,
        envelope,
        DSSE_MEDIA_TYPE,
        {PREDICATE_TYPE_ANNOTATION: predicate_type, SIGNATURE_ANNOTATION: ""},
    )
    return {"image": str(ref), "tag": tag, "manifest": manifest, "predicate_type": predicate_type}
