"""Offline verification of an image copied with containers/image's `dir:` transport.

`skopeo copy --dest dir:PATH` (or the containers/image fixtures) stores `manifest.json` and, for
cosign signatures, files `signature-N`: the bytes `\\x00sigstore-json\\n` followed by JSON
`{"mimeType", "payload": base64, "annotations"}` whose annotations are the `.sig` layer's. The
verdicts are the registry path's (`layers.verify_signature_layer`), so fixtures exercise the same
code. The files are the user's own copy, so every signature is checked, none is skipped unread.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from sluice.errors import SluiceError
from sluice.supply_chain.layers import verify_signature_layer
from sluice.supply_chain.trust import Trust
from sluice.supply_chain.verdicts import LayerRejected, VerificationError
from sluice.supply_chain.verify import manifest_digest

SIGSTORE_JSON_PREFIX = b"\x00sigstore-json\n"


def read_sigstore_signature(path: Path) -> tuple[str, bytes, dict[str, str]]:
    """(mimeType, payload bytes, annotations) of one containers/image sigstore signature file."""
    data = path.read_bytes()
    if not data.startswith(SIGSTORE_JSON_PREFIX):
        raise LayerRejected(f"{path.name} is not a sigstore signature (unknown format prefix)")
    try:
        doc = json.loads(data[len(SIGSTORE_JSON_PREFIX) :])
        payload = base64.b64decode(doc["payload"], validate=True)
        annotations = doc.get("annotations") or {}
        mime = doc.get("mimeType") or ""
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, binascii.Error) as exc:
        raise LayerRejected(f"{path.name} is malformed: {exc}") from exc
    if not isinstance(annotations, dict) or not isinstance(mime, str):
        raise LayerRejected(f"{path.name} is malformed: bad annotations or mimeType")
    return mime, payload, annotations


def verify_dir_image(path: str | Path, trust: Trust) -> dict[str, Any]:
    """At least one signature-N must verify for manifest.json; same rules as `verify.verify_image`."""
    root = Path(path)
    if not root.is_dir():
        raise SluiceError(f"not a directory: {root}")
    manifest = root / "manifest.json"
    if not manifest.is_file():
        raise VerificationError(
            f"{root} has no manifest.json: nothing the signatures could be checked against"
        )
    digest = manifest_digest(manifest.read_bytes())
    signatures = sorted(root.glob("signature-*"), key=lambda p: p.name)
    if not signatures:
        raise VerificationError(f"{root} has no signature-N files")
    verified, skipped = [], []
    for sig in signatures:
        try:
            mime, payload, annotations = read_sigstore_signature(sig)
            details = verify_signature_layer(
                media_type=mime,
                payload=payload,
                annotations=annotations,
                trust=trust,
                image_digest=digest,
            )
        except LayerRejected as exc:
            skipped.append(f"{sig.name}: {exc}")
            continue
        verified.append({"file": sig.name, **details})
    if not verified:
        raise VerificationError(f"no valid signature for {root.name} ({digest}): {'; '.join(skipped)}")
    return {
        "digest": digest,
        "signer": trust.describe(),
        "signatures": verified,
        "skipped": skipped,
    }
