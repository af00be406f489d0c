"""The change a promotion makes inside a checkout: regenerate the overlay file, render, verify.

The overlay file is a pure function of the promotion (model, version, URI, image, evidence), so
re-applying it on a new tip after a lost push race is exact, where a textual rebase could conflict.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sluice.atomic import write_text
from sluice.errors import SluiceError
from sluice.promotion import overlay
from sluice.promotion.evidence_check import Candidate, ui_links
from sluice.promotion.gitops import Checkout
from sluice.promotion.hooks import checkpoint
from sluice.promotion.render import Rendered, inspect, kustomize_build
from sluice.promotion.signatures import Verifier

if TYPE_CHECKING:
    from sluice.promotion.promote import PromoteOptions


@dataclass
class Applied:
    rel: str
    diff: str
    rendered: Rendered
    state: overlay.OverlayState


def apply_change(
    co: Checkout,
    model: str,
    env: str,
    make_text: Callable[[overlay.OverlayState | None], str],
    verify: Verifier,
    warn: Callable[[str], None] = print,
) -> Applied | None:
    """Write the overlay file in the checkout, render, verify; None when nothing would change."""
    rel = overlay.relative_overlay_file(model, env)
    directory = overlay.overlay_dir(co.path, model, env)
    if not (directory / "kustomization.yaml").is_file():
        raise SluiceError(
            f"no overlay apps/{model}/overlays/{env}/kustomization.yaml in the tree being promoted"
        )
    path = co.path / rel
    current = current_state(co, rel, warn)
    text = make_text(current)
    new = overlay.parse(text, rel)
    if current is not None and current.identity() == new.identity():
        return None
    write_text(path, text)
    checkpoint("after-write")
    rendered = inspect(kustomize_build(directory), new.resource or model)
    isvc = next(
        o
        for o in rendered.objects
        if o.get("kind") == "InferenceService" and o["metadata"].get("name") == (new.resource or model)
    )
    served_uri = isvc["spec"]["predictor"]["model"].get("storageUri")
    if served_uri != new.model_uri:
        raise SluiceError(
            f"rendered {rel} serves {served_uri!r}, not {new.model_uri!r}: is the patch listed?"
        )
    cluster = co.path / "clusters" / env
    if (cluster / "kustomization.yaml").is_file():
        kustomize_build(cluster)
    verify(rendered.effective_image)
    checkpoint("after-render")
    return Applied(rel=rel, diff=co.diff(rel), rendered=rendered, state=new)


def current_state(co: Checkout, rel: str, warn: Callable[[str], None]) -> overlay.OverlayState | None:
    """What the checkout's overlay file says. The file is machine-owned: when it is malformed (hand
    edited, truncated) it is regenerated whole, with a warning naming the commit that broke it."""
    try:
        return overlay.read(co.path / rel, rel)
    except overlay.MalformedOverlay as exc:
        commit = co.last_change(rel)[:12]
        warn(f"warning: {exc} (as of commit {commit}); regenerating it whole (the file is machine-owned)")
        return None


def commit_message(subject: str, body: list[str], trailers: dict[str, str]) -> str:
    lines = [subject, ""]
    if body:
        lines += [*body, ""]
    lines += [f"{key}: {value}" for key, value in trailers.items()]
    return "\n".join(lines) + "\n"


def promotion_branch(model: str, label: str) -> str:
    return f"promote/{model}/{label}"


def overlay_text_maker(opts: PromoteOptions, cand: Candidate) -> Callable[[overlay.OverlayState | None], str]:
    mlflow_url, evidence_url = ui_links(opts.mlflow_ui_url, cand)

    def make(current: overlay.OverlayState | None) -> str:
        carried = current.image if current and current.version else None
        return overlay.render(
            overlay.ModelVersionSpec(
                resource=(current.resource if current and current.resource else opts.model),
                model=opts.model,
                version=opts.version,
                model_uri=cand.model_uri,
                image=opts.image or carried,
                evidence_sha256=cand.evidence_sha256,
                data_sha256=cand.data_sha256,
                mlflow_url=mlflow_url,
                evidence_url=evidence_url,
                traffic=opts.traffic,
                trainer_image=trainer_image_of(cand),
            )
        )

    return make


def trainer_image_of(cand: Candidate) -> str | None:
    """The pinned trainer image the version's pipeline ran in (tag sluice.trainer_image), if recorded."""
    from sluice import tags

    image = (cand.tags or {}).get(tags.TRAINER_IMAGE)
    return image if image and overlay.is_pinned(image) else None


def message_maker(opts: PromoteOptions, cand: Candidate) -> Callable[[Applied], str]:
    def message(applied: Applied) -> str:
        traffic = f" at {opts.traffic}% traffic" if opts.traffic is not None else ""
        return commit_message(
            f"promote({opts.model}): v{opts.version} to {opts.env}{traffic}",
            [
                f"Model URI: {cand.model_uri}",
                f"Serving image: {applied.rendered.effective_image}",
                f"Evidence sha256: {cand.evidence_sha256}",
                f"Data sha256: {cand.data_sha256 or 'not recorded'}",
            ],
            {
                "Sluice-Model": opts.model,
                "Sluice-Version": opts.version,
                "Sluice-Environment": opts.env,
                "Sluice-Evidence-Sha256": cand.evidence_sha256,
            },
        )

    return message
