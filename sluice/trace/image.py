"""The image hop: the image the overlay serves, verified as admission verifies it.

The image is the overlay's `predictor.model.image`, else what the rendered overlay runs (the
ServingRuntime's, read from `kubectl kustomize` output as promotion reads it). Its cosign signature
is checked with the given key or keyless identity, and in production also the passing
gate-evidence attestation, the rule Kyverno applies (sluice.promotion.signatures).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.errors import Refused, SluiceError
from sluice.promotion import overlay
from sluice.promotion.gitops import Checkout
from sluice.promotion.signatures import required_attestation
from sluice.trace.hops import Hop, fail, ok, skip, unreachable

if TYPE_CHECKING:
    from sluice.supply_chain.trust import Trust


def served_image(co: Checkout, model: str, env: str, state: overlay.OverlayState) -> str:
    """What the predictor runs: the overlay's image, else the rendered overlay's effective image."""
    if state.image:
        return state.image
    from sluice.promotion.render import inspect, kustomize_build

    rendered = inspect(kustomize_build(overlay.overlay_dir(co.path, model, env)), state.resource or model)
    return rendered.effective_image


def image_hop(
    image: str | None,
    env: str | None,
    trust: Trust | None,
    *,
    allow_insecure_loopback: bool = False,
    docker_config: str | None = None,
) -> Hop:
    """Hop 6: signature (and, in production, evidence attestation) of `image` by the trusted signer."""
    if not image:
        return skip("image", "no image to verify (the version is served by no overlay at this ref)")
    facts: dict[str, Any] = {"image": image, "env": env}
    if not overlay.is_pinned(image):
        return fail("image", f"{image} is not pinned by digest: admission refuses it", **facts)
    if trust is None:
        return skip(
            "image",
            f"{image}: signature not checked (pass --key, or --certificate-identity "
            "with --certificate-oidc-issuer)",
            **facts,
        )
    from sluice.supply_chain.verify import verify_image

    attestation = required_attestation(env)
    try:
        summary = verify_image(
            image,
            trust,
            attestation_type=attestation,
            docker_config=docker_config,
            allow_insecure_loopback=allow_insecure_loopback,
        )
    except Refused as exc:
        return fail("image", f"{image}: {exc}", **facts)
    except SluiceError as exc:
        return unreachable("image", f"cannot verify {image}: {exc}", **facts)
    facts.update(signer=summary["signer"], signatures=len(summary["signatures"]))
    what = "signature"
    if summary["attestation"]:
        facts["attestations"] = len(summary["attestation"]["verified"])
        what += f" and {facts['attestations']} passing gate-evidence attestation(s)"
    return ok("image", f"{what} verified by {summary['signer']}, as {env or 'admission'} requires", **facts)
