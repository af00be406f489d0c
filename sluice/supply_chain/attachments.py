"""The `.sig` / `.att` image byte for byte as cosign writes it (go-containerregistry underneath).

cosign starts from go-containerregistry's `empty.Image`, switches it to OCI media types (cosign
pkg/oci/empty/empty.go) and appends one layer per signature with `mutate.Append` (cosign
pkg/oci/mutate/signatures.go). go-containerregistry re-marshals the image config (`v1.ConfigFile`,
pkg/v1/config.go) adding one zero `History` entry and one diff_id per layer (pkg/v1/mutate/image.go
compute()), and marshals the manifest (`v1.Manifest`, pkg/v1/manifest.go). Go writes struct fields
in declaration order, leaves out empty `omitempty` fields, never leaves out a struct-typed field (so
a zero `created` is written as 0001-01-01T00:00:00Z) and sorts map keys.

`created` is the zero time since cosign v2.2.0 (commit 59a835ca) unless `--record-creation-timestamp`;
cosign <= v2.1 wrote time.Now(). When the tag already holds a signature image, cosign parses its
config and manifest into those Go structs and writes them again, so unknown fields are dropped, key
order is normalised, and the existing `created` and `history` are kept. Signature layers are stored
uncompressed, so a layer's diff_id is its digest (cosign pkg/oci/static/signature.go).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from sluice.supply_chain.constants import OCI_CONFIG, OCI_MANIFEST
from sluice.supply_chain.gojson import go_dumps

ZERO_TIME = "0001-01-01T00:00:00Z"

# v1.Config (pkg/v1/config.go) fields in declaration order; all are omitempty.
_RUNTIME_CONFIG_FIELDS = (
    "AttachStderr",
    "AttachStdin",
    "AttachStdout",
    "Cmd",
    "Healthcheck",
    "Domainname",
    "Entrypoint",
    "Env",
    "Hostname",
    "Image",
    "Labels",
    "OnBuild",
    "OpenStdin",
    "StdinOnce",
    "Tty",
    "User",
    "Volumes",
    "WorkingDir",
    "ExposedPorts",
    "ArgsEscaped",
    "NetworkDisabled",
    "MacAddress",
    "StopSignal",
    "Shell",
)
_RFC3339 = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def go_time(text: str) -> str:
    """A timestamp as Go's time.Time marshals it again (RFC 3339, trailing fraction zeros trimmed)."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    base, fraction, zone = match.groups()
    fraction = (fraction or "").rstrip("0")
    if zone in ("+00:00", "-00:00"):
        zone = "Z"
    return base + (f".{fraction}" if fraction else "") + zone


def _empty(value: Any) -> bool:
    return value in (None, "", False, 0) or value == [] or value == {}


def _history_entry(entry: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if not _empty(entry.get("author")):
        out["author"] = entry["author"]
    out["created"] = go_time(entry.get("created") or ZERO_TIME)  # a struct: never left out
    for key in ("created_by", "comment", "empty_layer"):
        if not _empty(entry.get(key)):
            out[key] = entry[key]
    return out


def _runtime_config(config: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key in _RUNTIME_CONFIG_FIELDS:
        value = config.get(key)
        if not _empty(value):
            out[key] = dict(sorted(value.items())) if isinstance(value, dict) else value
    return out


def config_file(
    diff_ids: list[str],
    *,
    created: str = ZERO_TIME,
    history: list[dict[str, Any]] | None = None,
    base: dict[str, Any] | None = None,
) -> bytes:
    """The image config blob: `base` (a parsed existing config, or None for empty.Image) plus layers.

    `diff_ids` and `history` are the complete lists; a fresh signature image has one zero history
    entry per layer.
    """
    base = base or {}
    doc: dict[str, Any] = {"architecture": base.get("architecture", "")}
    for key in ("author", "container"):
        if not _empty(base.get(key)):
            doc[key] = base[key]
    doc["created"] = go_time(base.get("created") or created)
    if not _empty(base.get("docker_version")):
        doc["docker_version"] = base["docker_version"]
    entries = history if history is not None else [{} for _ in diff_ids]
    if entries:
        doc["history"] = [_history_entry(entry) for entry in entries]
    doc["os"] = base.get("os", "")
    doc["rootfs"] = {"type": (base.get("rootfs") or {}).get("type", "layers"), "diff_ids": list(diff_ids)}
    doc["config"] = _runtime_config(base.get("config") or {})
    for key in ("os.version", "variant", "os.features"):
        if not _empty(base.get(key)):
            doc[key] = base[key]
    return go_dumps(doc)


def descriptor(media_type: str, blob: bytes, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """A v1.Descriptor for `blob`: mediaType, size, digest, annotations (sorted, as a Go map)."""
    desc: dict[str, Any] = {"mediaType": media_type, "size": len(blob), "digest": _digest(blob)}
    if annotations:
        desc["annotations"] = dict(sorted(annotations.items()))
    return desc


def _normalise_descriptor(desc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "mediaType": desc.get("mediaType", ""),
        "size": desc["size"],
        "digest": desc["digest"],
    }
    for key in ("data", "urls"):
        if not _empty(desc.get(key)):
            out[key] = desc[key]
    if desc.get("annotations"):
        out["annotations"] = dict(sorted(desc["annotations"].items()))
    for key in ("platform", "artifactType"):
        if not _empty(desc.get(key)):
            out[key] = desc[key]
    return out


def manifest(
    config_blob: bytes,
    layers: list[dict[str, Any]],
    *,
    media_type: str = OCI_MANIFEST,
    config_media_type: str = OCI_CONFIG,
) -> bytes:
    """The v1.Manifest bytes of the signature image (no manifest annotations, as cosign)."""
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": config_media_type, "size": len(config_blob), "digest": _digest(config_blob)},
        "layers": [_normalise_descriptor(layer) for layer in layers],
    }
    return go_dumps(doc)


def append_layers(
    existing_manifest: dict[str, Any] | None,
    existing_config: bytes | None,
    new_layers: list[dict[str, Any]],
    *,
    created: str = ZERO_TIME,
) -> tuple[bytes, bytes]:
    """(manifest, config) after cosign appends `new_layers` (descriptors) to what the tag holds.

    `existing_manifest` is the parsed manifest at the tag and `existing_config` its config blob, or
    both None for a new signature image (then `created` is the config's creation time).
    """
    old_layers: list[dict[str, Any]] = []
    media_type, config_media_type = OCI_MANIFEST, OCI_CONFIG
    if existing_manifest is not None:
        old_layers = list(existing_manifest.get("layers") or [])
        media_type = existing_manifest.get("mediaType") or media_type
        config_media_type = (existing_manifest.get("config") or {}).get("mediaType") or config_media_type
    base = json.loads(existing_config) if existing_config is not None else None
    if base is not None and not isinstance(base, dict):
        raise ValueError("the existing signature image config is not a JSON object")
    history = list((base or {}).get("history") or []) + [{} for _ in new_layers]
    diff_ids = list(((base or {}).get("rootfs") or {}).get("diff_ids") or [])
    diff_ids += [layer["digest"] for layer in new_layers]
    config = config_file(diff_ids, created=created, history=history, base=base)
    body = manifest(
        config, old_layers + new_layers, media_type=media_type, config_media_type=config_media_type
    )
    return body, config
