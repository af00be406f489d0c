"""Reading an image's labels from the registry: a real docker-registry, a manifest and an index."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid

import pytest

from sluice.errors import SluiceError
from sluice.supply_chain.constants import OCI_CONFIG, OCI_INDEX, OCI_MANIFEST
from sluice.supply_chain.image_config import image_labels
from sluice.supply_chain.oci import RegistryClient
from tests.sluice.supply_chain.conftest import tiny_layer

LABELS = {"dev.sluice.lock.sha256": "a" * 64, "org.opencontainers.image.title": "sluice-trainer"}


def push_labelled_image(registry: str, labels: dict[str, str]) -> str:
    """A minimal image in the real registry whose config carries `labels`; returns REF@sha256:..."""
    client = RegistryClient(registry, allow_insecure_loopback=True)
    repository = f"sluice/trainer-{uuid.uuid4().hex[:8]}"
    layer = tiny_layer(json.dumps(labels).encode())
    diff_id = "sha256:" + hashlib.sha256(gzip.decompress(layer)).hexdigest()
    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "config": {"Labels": labels},
         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}
    ).encode()
    blobs = {
        "config": {"mediaType": OCI_CONFIG, "size": len(config),
                   "digest": client.put_blob(repository, config)},
        "layer": {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer),
                  "digest": client.put_blob(repository, layer)},
    }
    manifest = json.dumps(
        {"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": blobs["config"], "layers": [blobs["layer"]]}
    ).encode()
    digest = client.put_manifest(repository, "latest", manifest, OCI_MANIFEST)
    return f"{registry}/{repository}@{digest}"



def test_labels_come_from_the_config_blob(oci_registry: str) -> None:
    image = push_labelled_image(oci_registry, LABELS)
    assert image_labels(image, allow_insecure_loopback=True) == LABELS


def test_an_index_is_followed_to_the_linux_amd64_manifest(oci_registry: str) -> None:
    image = push_labelled_image(oci_registry, LABELS)
    other = push_labelled_image(oci_registry, {"dev.sluice.lock.sha256": "b" * 64})
    repository = image.split("/", 1)[1].split("@")[0]
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    # Manifests of other repositories are copied in, so the index can point at them by digest.
    entries = []
    for ref, arch in ((other, "arm64"), (image, "amd64")):
        repo, ref_digest = ref.split("/", 1)[1].split("@")
        body = client.get_manifest(repo, ref_digest).body
        doc = json.loads(body)
        for blob in [doc["config"], *doc["layers"]]:
            client.put_blob(repository, client.get_blob(repo, blob["digest"]))
        client.put_manifest(repository, ref_digest, body, OCI_MANIFEST)
        entries.append({"mediaType": OCI_MANIFEST, "size": len(body), "digest": ref_digest,
                        "platform": {"os": "linux", "architecture": arch}})
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    index_digest = client.put_manifest(repository, "multi", index, OCI_INDEX)
    assert image_labels(f"{oci_registry}/{repository}@{index_digest}", allow_insecure_loopback=True) == LABELS


def test_a_tag_is_not_enough_and_a_missing_image_is_named(oci_registry: str) -> None:
    with pytest.raises(SluiceError, match="has no digest"):
        image_labels(f"{oci_registry}/sluice/trainer:latest", allow_insecure_loopback=True)
    missing = f"{oci_registry}/sluice/none@sha256:" + "0" * 64
    with pytest.raises(SluiceError, match="not found in registry"):
        image_labels(missing, allow_insecure_loopback=True)
