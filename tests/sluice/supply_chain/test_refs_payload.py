"""Image references and the simple-signing payload: the parsing everything else relies on."""

from __future__ import annotations

import pytest

from sluice.errors import SluiceError
from sluice.supply_chain.dsse import StatementError, check_statement, pae
from sluice.supply_chain.payload import PayloadError, build_payload, parse_payload
from sluice.supply_chain.refs import attachment_tag, parse_image_ref

D = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("busybox", "docker.io", "library/busybox", None, None),
        ("busybox:1.36", "docker.io", "library/busybox", "1.36", None),
        (f"ghcr.io/org/model@{D}", "ghcr.io", "org/model", None, D),
        (f"127.0.0.1:5000/sluice/demo:v1@{D}", "127.0.0.1:5000", "sluice/demo", "v1", D),
        (f"localhost/a/b@{D}", "localhost", "a/b", None, D),
        ("index.docker.io/library/x:1", "docker.io", "library/x", "1", None),
    ],
)
def test_parse_image_ref(text: str, registry: str, repository: str, tag, digest) -> None:
    ref = parse_image_ref(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("ghcr.io/a/b@sha256:abc", "64 lowercase hex"),
        (f"ghcr.io/a/b@sha512:{'a' * 128}", "digest must be sha256"),
        ("ghcr.io/A/b", "bad repository name"),
        ("https://ghcr.io/a/b", "scheme"),
        ("ghcr.io/a/b:bad tag", "whitespace"),
    ],
)
def test_bad_image_refs_are_named(text: str, message: str) -> None:
    with pytest.raises(SluiceError, match=message):
        parse_image_ref(text)


def test_tags_are_refused_where_a_digest_is_needed() -> None:
    with pytest.raises(SluiceError, match="has no digest"):
        parse_image_ref("ghcr.io/a/b:v1").require_digest()
    assert attachment_tag(D, "sig") == "sha256-" + "ab" * 32 + ".sig"


def test_payload_round_trip_and_strictness() -> None:
    payload = build_payload("ghcr.io/a/b", D, {"k": "v"})
    parsed = parse_payload(payload)
    assert (parsed.docker_reference, parsed.manifest_digest, parsed.optional) == (
        "ghcr.io/a/b",
        D,
        {"k": "v"},
    )
    with pytest.raises(PayloadError, match=r"critical\.type"):
        parse_payload(payload.replace(b"cosign container image signature", b"something else"))
    with pytest.raises(PayloadError, match="docker-manifest-digest"):
        parse_payload(payload.replace(b"docker-manifest-digest", b"Docker-manifest-digest"))
    duplicated = payload.replace(b'"type"', b'"image":{"docker-manifest-digest":"%s"},"type"' % D.encode())
    with pytest.raises(PayloadError, match="duplicate JSON keys"):
        parse_payload(duplicated)
    with pytest.raises(PayloadError, match="not UTF-8 JSON"):
        parse_payload(b"\xff")


def test_pae_counts_bytes() -> None:
    assert pae("t", "é".encode()) == b"DSSEv1 1 t 2 \xc3\xa9"


def test_statement_needs_the_in_toto_payload_type() -> None:
    with pytest.raises(StatementError, match="payloadType"):
        check_statement("application/json", b"{}", "ab" * 32, "x")
