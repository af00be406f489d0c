"""Which images a promotion may write: cosign signature checks, by environment.

Production always verifies, with a key: the signature and the passing gate-evidence attestation
on the serving image. Staging verifies when a key is configured and warns otherwise, so a laptop
without a key can still promote locally.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from sluice.errors import Refused, SluiceError

KEY_ENV = "SLUICE_COSIGN_PUB"

Verifier = Callable[[str], None]


def load_key(path: str | None) -> bytes | None:
    """The cosign public key from --key, else $SLUICE_COSIGN_PUB (a path, or the PEM itself)."""
    source = path or os.environ.get(KEY_ENV)
    if not source:
        return None
    if source.lstrip().startswith("-----BEGIN"):
        return source.encode()
    try:
        return Path(source).read_bytes()
    except OSError as exc:
        raise SluiceError(f"cannot read cosign public key {source}: {exc.strerror}") from exc


def signature_verifier(
    env: str,
    key_pem: bytes | None,
    *,
    allow_insecure_loopback: bool = False,
    warn: Callable[[str], None] = print,
) -> Verifier:
    """Production: signature + passing gate-evidence attestation, key required. Staging: when keyed.

    A verdict against the image (unsigned, no attestation, failed evidence, no key to check it
    with) is Refused, exit 1; a registry that cannot be reached stays an error, exit 2."""

    def verify(image: str) -> None:
        if key_pem is None:
            if env == "production":
                raise Refused(
                    f"production promotion needs a cosign public key (--key or ${KEY_ENV}) to verify {image}"
                )
            warn(f"warning: no cosign public key (--key or ${KEY_ENV}): signature of {image} NOT verified")
            return
        try:
            from sluice.supply_chain.constants import PREDICATE_TYPE
            from sluice.supply_chain.verify import VerificationError, verify_image
        except ImportError as exc:
            raise SluiceError(
                "signature verification is unavailable (sluice.supply_chain not installed)"
            ) from exc
        try:
            verify_image(
                image,
                key_pem,
                attestation_type=PREDICATE_TYPE if env == "production" else None,
                allow_insecure_loopback=allow_insecure_loopback,
            )
        except VerificationError as exc:  # the image's verdict (a Refused or, before #18, a SluiceError)
            raise Refused(f"refusing {image}: {exc}") from exc
        except SluiceError as exc:
            raise SluiceError(f"cannot verify {image}: {exc}") from exc

    return verify
