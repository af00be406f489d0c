"""Who may have signed: a public key (cosign `--key`) or a keyless identity (Fulcio certificate +
Rekor, cosign `--certificate-identity` / `--certificate-oidc-issuer`).

Both answer the same two questions for a layer, so the layer verdicts (sluice.supply_chain.layers)
and everything above them do not care which one is in use: does this signature over these bytes
count, and does this DSSE envelope count. Each raises LayerRejected naming the first thing wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from sluice.errors import SluiceError
from sluice.supply_chain import dsse, keyless, keys, tlog
from sluice.supply_chain.constants import BUNDLE_ANNOTATION
from sluice.supply_chain.keyless import IdentityPolicy
from sluice.supply_chain.trust_root import TrustedRoot, rekor_key_root
from sluice.supply_chain.verdicts import LayerRejected

MAX_DSSE_SIGNATURES = 16  # an envelope with more is not a cosign attestation; do not try them all


@dataclass(frozen=True)
class KeyTrust:
    """Signatures by one public key; with `rekor`, each must also carry a Rekor SET by that key."""

    public_key: keys.PublicKey
    ed25519_mode: keys.Ed25519Mode = "ph"
    rekor: TrustedRoot | None = None

    @classmethod
    def from_pem(
        cls, pem: bytes, *, ed25519_mode: keys.Ed25519Mode = "ph", rekor_key_pem: bytes | None = None
    ) -> KeyTrust:
        rekor = None
        if rekor_key_pem:
            rekor_key = keys.load_public_key(rekor_key_pem)
            if not isinstance(rekor_key, ec.EllipticCurvePublicKey):
                raise SluiceError("the Rekor public key must be ECDSA")
            rekor = rekor_key_root(rekor_key)
        return cls(keys.load_public_key(pem), ed25519_mode, rekor)

    def describe(self) -> str:
        return f"key {keys.key_fingerprint(self.public_key)}"

    def verify_signature(
        self, payload: bytes, signature: bytes, annotations: dict[str, str]
    ) -> dict[str, Any]:
        if not keys.verify_bytes(self.public_key, signature, payload, self.ed25519_mode):
            raise LayerRejected(
                "signature does not verify with the given key (another key, or payload changed)"
            )
        return self._logged(payload, signature, annotations)

    def verify_envelope(
        self, envelope: bytes, env: dsse.Envelope, annotations: dict[str, str]
    ) -> dict[str, Any]:
        signed = dsse.pae(env.payload_type, env.payload)
        sigs = env.signatures[:MAX_DSSE_SIGNATURES]
        if not any(keys.verify_bytes(self.public_key, sig, signed, self.ed25519_mode) for sig in sigs):
            raise LayerRejected("DSSE signature does not verify with the given key")
        return self._logged(envelope, None, annotations)

    def _logged(
        self, artifact: bytes, signature: bytes | None, annotations: dict[str, str]
    ) -> dict[str, Any]:
        if self.rekor is None:
            return {}
        bundle = annotations.get(BUNDLE_ANNOTATION)
        if not bundle:
            raise LayerRejected("no Rekor bundle, but a Rekor key was given (tlog required)")
        entry = tlog.verify_bundle(bundle, self.rekor)
        tlog.check_entry_binds(entry, artifact=artifact, signature=signature, signer=self.public_key)
        when = f"{entry.integrated_time:%Y-%m-%dT%H:%M:%SZ}"
        return {"rekor": {"log_index": entry.log_index, "integrated_time": when}}


@dataclass(frozen=True)
class KeylessTrust:
    """Signatures by a Fulcio certificate for `identity`, chained to `root`, logged in its Rekor."""

    root: TrustedRoot
    identity: IdentityPolicy
    require_sct: bool = True

    def describe(self) -> str:
        return self.identity.describe()

    def _certificate(self, artifact: bytes, signature: bytes | None, annotations: dict[str, str]):
        return keyless.verify_certificate_and_entry(
            artifact=artifact,
            signature=signature,
            annotations=annotations,
            root=self.root,
            policy=self.identity,
            require_sct=self.require_sct,
        )

    def verify_signature(
        self, payload: bytes, signature: bytes, annotations: dict[str, str]
    ) -> dict[str, Any]:
        cert, details = self._certificate(payload, signature, annotations)
        if not keyless.verify_with_certificate(cert, signature, payload):
            raise LayerRejected("signature does not verify with the certificate's key")
        return details

    def verify_envelope(
        self, envelope: bytes, env: dsse.Envelope, annotations: dict[str, str]
    ) -> dict[str, Any]:
        cert, details = self._certificate(envelope, None, annotations)
        signed = dsse.pae(env.payload_type, env.payload)
        sigs = env.signatures[:MAX_DSSE_SIGNATURES]
        if not any(keyless.verify_with_certificate(cert, sig, signed) for sig in sigs):
            raise LayerRejected("DSSE signature does not verify with the certificate's key")
        return details


Trust = KeyTrust | KeylessTrust
