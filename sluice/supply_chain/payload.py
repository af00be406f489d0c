"""The cosign "simple signing" payload: the bytes a tag-based image signature signs.

Byte layout follows sigstore/sigstore pkg/signature/payload: Go's json.Marshal of the struct
(`critical` then `optional`, no spaces), `optional` being a Go map (keys sorted, at every level),
and Go's escaping of `<`, `>` and `&`. Parsing is strict on purpose: exact lowercase keys, no
duplicate keys, the right `critical.type`, so that two parsers can never disagree on what was signed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sluice.supply_chain.constants import SIGNATURE_TYPE
from sluice.supply_chain.gojson import go_dumps
from sluice.supply_chain.refs import DIGEST_RE


class PayloadError(ValueError):
    """The payload is not a cosign container image signature (message says why)."""


@dataclass(frozen=True)
class SimpleSigning:
    docker_reference: str
    manifest_digest: str
    optional: dict[str, Any] | None


def build_payload(
    docker_reference: str, manifest_digest: str, optional: dict[str, Any] | None = None
) -> bytes:
    """The payload cosign signs; the struct's field order happens to be alphabetical, so sorting
    every level gives both the struct order and the map order."""
    doc = {
        "critical": {
            "identity": {"docker-reference": docker_reference},
            "image": {"docker-manifest-digest": manifest_digest},
            "type": SIGNATURE_TYPE,
        },
        "optional": optional,
    }
    return go_dumps(doc, sort_keys=True)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    duplicated = {k for k in keys if keys.count(k) > 1}
    if duplicated:
        raise PayloadError(f"duplicate JSON keys {sorted(duplicated)}")
    return dict(pairs)


def strict_json(data: bytes) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise PayloadError("not UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        raise PayloadError(f"not JSON ({exc.msg} at char {exc.pos})") from exc


def _object(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where} is not a JSON object")
    return value


def parse_payload(data: bytes) -> SimpleSigning:
    doc = _object(strict_json(data), "payload")
    critical = _object(doc.get("critical"), "critical")
    kind = critical.get("type")
    if kind != SIGNATURE_TYPE:
        raise PayloadError(f"critical.type is {kind!r}, not {SIGNATURE_TYPE!r}")
    image = _object(critical.get("image"), "critical.image")
    digest = image.get("docker-manifest-digest")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise PayloadError(
            f"critical.image.docker-manifest-digest is missing or not a sha256 digest: {digest!r}"
        )
    identity = _object(critical.get("identity"), "critical.identity")
    reference = identity.get("docker-reference")
    if not isinstance(reference, str):
        raise PayloadError("critical.identity.docker-reference is missing")
    optional = doc.get("optional")
    if optional is not None and not isinstance(optional, dict):
        raise PayloadError("optional is neither null nor an object")
    return SimpleSigning(reference, digest, optional)
