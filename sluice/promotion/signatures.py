"""Which images a promotion may write: cosign signature checks, by environment.

Production always verifies, with a key or a keyless identity: the signature and the passing
gate-evidence attestation on the serving image. Staging verifies when a key or an identity is
configured and warns otherwise, so a laptop without either can still promote locally. A bad
verdict is a refusal (exit 1); an unreachable registry or an unusable key is an input error (exit 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.errors import Refused, SluiceError

if TYPE_CHECKING:
    from sluice.supply_chain.trust import Trust

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


def key_trust(key_pem: bytes | None) -> Trust | None:
    """A KeyTrust for a PEM public key, or None without one."""
    if key_pem is None:
        return None
    from sluice.supply_chain.trust import KeyTrust

    try:
        return KeyTrust.from_pem(key_pem)
    except SluiceError as exc:
        raise SluiceError(f"cosign public key (--key or ${KEY_ENV}): {exc}") from exc


def required_attestation(env: str | None) -> str | None:
    """The attestation admission requires besides the signature (policies/verify-sluice-images.yaml):
    the passing gate-evidence predicate in production, none elsewhere."""
    from sluice.supply_chain.constants import PREDICATE_TYPE

    return PREDICATE_TYPE if env == "production" else None


def signature_verifier(
    env: str,
    trust: Trust | None,
    *,
    allow_insecure_loopback: bool = False,
    warn: Callable[[str], None] = print,
) -> Verifier:
    """Production: signature + passing gate-evidence attestation, a signer required. Staging: when given.

    A verdict against the image (unsigned, no attestation, failed evidence) is Refused, exit 1; no
    signer to check it with (usage) or a registry that cannot be reached is an error, exit 2."""

    def verify(image: str) -> None:
        if trust is None:
            if env == "production":
                raise SluiceError(
                    f"production promotion needs a cosign public key (--key or ${KEY_ENV}) or a keyless "
                    f"identity (--certificate-identity and --certificate-oidc-issuer) to verify {image}"
                )
            warn(f"warning: no cosign public key (--key or ${KEY_ENV}): signature of {image} NOT verified")
            return
        from sluice.supply_chain.verify import verify_image

        try:
            verify_image(
                image,
                trust,
                attestation_type=required_attestation(env),
                allow_insecure_loopback=allow_insecure_loopback,
            )
        except Refused as exc:
            raise Refused(f"refusing {image}: {exc}") from exc
        except SluiceError as exc:
            raise SluiceError(f"cannot verify {image}: {exc}") from exc

    return verify
