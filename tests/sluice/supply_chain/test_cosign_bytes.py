"""`sluice sign` writes the `.sig` image byte for byte as cosign v2 does: config blob, manifest and
the docker-reference in the payload.

The shared fixtures (../shared/fixtures/cosign-interop) hold cosign payloads and signatures but no
`.sig` manifest or config blob, so the reference bytes come from three public records of real
cosign runs. Only public signature data is used (payload fields, the base64 signature annotation and
the digests the registry reported); no key material:

1. A `cosign -d` HTTP trace of `cosign sign`/`cosign verify` against Docker Hub for
   `chihjenhuang/cosign1:t1` (2023-02-17, cosign v1.13.1, go-containerregistry v0.11.0); the `.sig`
   manifest (558 bytes, Docker-Content-Digest 7ebe8964…) and payload are in the trace. cosign
   before v2.2 wrote `created` as time.Now(); the config digest 85ad8e17… is in that manifest.
2. tsaarni/devenvs@5d3c186f, sigstore/README-openssl-signing.txt: `cosign attach signature` with
   go-containerregistry v0.20.2 (2024-10), zero `created`, a signature annotation containing
   newlines, and the registry's manifest digest 36570d59….
3. tobby-fetch/tobby-fetch@976ea80d, internal/sigverify/cosign_compat_test.go: cosign v3.0.4
   `sign --key --tlog-upload=false` in the classic format; the config digest and the sha256 of the
   captured manifest bytes (only these digests are used here).
"""

from __future__ import annotations

import hashlib
import json

import pytest

from sluice.supply_chain.constants import OCI_MANIFEST, SIGNATURE_ANNOTATION, SIMPLE_SIGNING_MEDIA_TYPE
from sluice.supply_chain.oci import RegistryClient
from sluice.supply_chain.payload import build_payload
from sluice.supply_chain.refs import attachment_tag, parse_image_ref
from tests.sluice.supply_chain.conftest import push_image

ZERO = "0001-01-01T00:00:00Z"
CAPTURES = [
    pytest.param(
        {
            "reference": "chihjenhuang/cosign1:t1",
            "image_digest": "sha256:4c1c50d0ffc614f90b93b07d778028dc765548e823f676fb027f61d281ac380d",
            "signature": "MEYCIQCPH7NJAIfrB6BZN91dV0o7l/i11muXrvrAh100jDMMhAIhAPsLH0oXb2OPITXRpWBMUd3vHtz5"
            "Ks5pql2Hr6t/IJXw",
            "created": "2023-02-17T09:25:33.91047962-08:00",
            "payload": "sha256:b671489ededd1a180bd87235bba00fd83354f9c7d13b71d9f8b66a8e52965ebc",
            "config": "sha256:85ad8e17d3d7c00664855c638832bd99f32d42542c2d587851410a45a7f60b95",
            "manifest": "sha256:7ebe8964225fa4619b53aa35416ef0246c037e36ddf81776b21b15e1dda2262b",
        },
        id="cosign-v1.13-docker-hub-trace",
    ),
    pytest.param(
        {
            "reference": "registry.127-0-10-80.nip.io/alpine:3.20.3",
            "image_digest": "sha256:33735bd63cf84d7e388d9f6d297d348c523c044410f553bd878c6d7829612735",
            "signature": "MEUCIQDBRZD5sNATW5T+7IFug6L4I9gfaNu77Hvf/p15V1PDTQIgTTIFoW+H8y/ZSSNZD5SdNA0b\n"
            "ia5Zhsd26RjgvPb6CXU=\n",
            "created": ZERO,
            "payload": "sha256:4306feade2f8d7aa22ad654dfd61d0ee66a94f8970fba8d825f45641e9087a78",
            "config": "sha256:d748d2b76ebf8a245176858c537a245f62f4cd9271dcad170c107bd399384703",
            "manifest": "sha256:36570d59b0a2ce9a2ae9da089e72b45c4b51c11bf9a45050dd8cd42e4cb638f4",
        },
        id="ggcr-v0.20-attach-signature",
    ),
    pytest.param(
        {
            "reference": "localhost:15381/tobby/fixture",
            "image_digest": "sha256:f20c43161d73848408ef247f0ec7111b19fe58ffebc0cbcaa0d2c8bda4967268",
            "signature": "MEUCIEB+pz4s+9yxG+Om/bukeAfwloKFEISUhxLvIYlP02P8AiEAz1oNkilC+cprxcrEHqN0vxM+zvP3"
            "4ikHFzi8e7Sevls=",
            "created": ZERO,
            "payload": "sha256:3a29d26a2fc848d25ccf9c2288194ca90599e70ef69087644f186e5e7331f28b",
            "config": "sha256:2122b6ad0794d3fdae43a4b477cf1d95d4a38d3c5f10631e199676039b876e37",
            "manifest": "sha256:b6872674fc1bef936d1400f22f94b090f3e3eaf53c1b26362d39f3701cd08053",
        },
        id="cosign-v3.0-classic-format",
    ),
]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def payload_of(capture: dict) -> bytes:
    ref = parse_image_ref(capture["reference"])
    return build_payload(ref.docker_reference, capture["image_digest"])


@pytest.mark.parametrize("capture", CAPTURES)
def test_payload_config_and_manifest_digests_are_cosigns(capture: dict) -> None:
    from sluice.supply_chain import attachments

    payload = payload_of(capture)
    assert sha256(payload) == capture["payload"]
    layer = attachments.descriptor(
        SIMPLE_SIGNING_MEDIA_TYPE, payload, {SIGNATURE_ANNOTATION: capture["signature"]}
    )
    manifest, config = attachments.append_layers(None, None, [layer], created=capture["created"])
    assert sha256(config) == capture["config"]
    assert sha256(manifest) == capture["manifest"]


def test_docker_references_are_go_containerregistry_names() -> None:
    expected = {
        "busybox": "index.docker.io/library/busybox",
        "docker.io/org/app:1": "index.docker.io/org/app",
        "index.docker.io/library/x@sha256:" + "0" * 64: "index.docker.io/library/x",
        "ghcr.io/org/app@sha256:" + "0" * 64: "ghcr.io/org/app",
        "localhost:5000/app": "localhost:5000/app",
        "127.0.0.1:5000/sluice/demo:v1": "127.0.0.1:5000/sluice/demo",
    }
    assert {text: parse_image_ref(text).docker_reference for text in expected} == expected


def test_optional_fields_are_marshalled_like_go() -> None:
    """Go's json.Marshal sorts map keys and escapes <, > and & (sigstore/sigstore payload.Cosign)."""
    digest = "sha256:" + "ab" * 32
    payload = build_payload("ghcr.io/a/b", digest, {"z": "<&>", "a": {"y": 1, "b": "é"}})
    assert (
        payload
        == (
            '{"critical":{"identity":{"docker-reference":"ghcr.io/a/b"},"image":{"docker-manifest-digest":'
            f'"{digest}"}},"type":"cosign container image signature"}},'
            '"optional":{"a":{"b":"é","y":1},"z":"\\u003c\\u0026\\u003e"}}'
        ).encode()
    )


@pytest.mark.slow
@pytest.mark.parametrize("capture", CAPTURES[1:])
def test_the_signing_path_pushes_cosigns_exact_manifest(oci_registry: str, capture: dict) -> None:
    """The code `sluice sign` runs, given cosign's payload and signature, stores cosign's manifest."""
    from sluice.supply_chain.sign import append_attachment

    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    ref = parse_image_ref(f"{oci_registry}/sluice/cosign-bytes@{capture['image_digest']}")
    tag = attachment_tag(capture["image_digest"], "sig")
    annotations = {SIGNATURE_ANNOTATION: capture["signature"]}
    digest = append_attachment(client, ref, tag, payload_of(capture), SIMPLE_SIGNING_MEDIA_TYPE, annotations)
    assert digest == capture["manifest"]
    stored = client.get_manifest(ref.repository, tag)
    assert stored.digest == capture["manifest"]
    assert json.loads(stored.body)["config"]["digest"] == capture["config"]


@pytest.mark.slow
def test_sluice_sign_writes_cosigns_config_and_appends_like_cosign(
    sluice, oci_registry: str, keypair
) -> None:
    """Config blob as in the issue: zero `created`, one history entry and one diff_id per layer."""
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    digest = push_image(client, "sluice/cosign-bytes", "v1", b"byte-identical signing")
    image = f"{oci_registry}/sluice/cosign-bytes@{digest}"
    tag = attachment_tag(digest, "sig")
    layers = []
    for _ in range(2):
        assert sluice("sign", image, "--key", keypair[0], "--allow-insecure-loopback").code == 0
        manifest = client.get_manifest("sluice/cosign-bytes", tag)
        doc = json.loads(manifest.body)
        layers = [layer["digest"] for layer in doc["layers"]]
        config = client.get_blob("sluice/cosign-bytes", doc["config"]["digest"])
        history = ",".join([f'{{"created":"{ZERO}"}}'] * len(layers))
        diff_ids = ",".join(f'"{d}"' for d in layers)
        expected = (
            f'{{"architecture":"","created":"{ZERO}","history":[{history}],"os":"",'
            f'"rootfs":{{"type":"layers","diff_ids":[{diff_ids}]}},"config":{{}}}}'
        )
        assert config == expected.encode()
        assert list(doc) == ["schemaVersion", "mediaType", "config", "layers"]
        assert doc["mediaType"] == OCI_MANIFEST
        assert manifest.body == json.dumps(doc, separators=(",", ":")).encode()
    assert len(layers) == 2
