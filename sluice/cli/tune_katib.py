"""`sluice tune --katib FILE`: the model's search space rendered as its Katib Experiment.

The trials run the signed trainer image the environment serves (the staging overlay's
`sluice.dev/trainer-image`, written by `sluice promote` from the version's registry tag), or the
one given with --trainer-image; the data paths and namespace come from the model's retraining
declaration. The result is validated the way `sluice lint` validates it (Katib's closed OpenAPI
schema, the trial-parameter cross-check, the strict Job schema) before it is written.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sluice.errors import SluiceError


def _trainer_image(args: argparse.Namespace, root: Path, model: str) -> str:
    from sluice.promotion import overlay

    if args.trainer_image:
        return overlay.require_pinned(args.trainer_image, "--trainer-image", error=SluiceError)
    rel = overlay.relative_overlay_file(model, "staging")
    state = overlay.read(root / rel, rel)
    if state is None or not state.trainer_image:
        raise SluiceError(
            f"{rel} names no trainer image yet (nothing trained in the cluster has been promoted): pass "
            "--trainer-image REF@sha256:<digest>"
        )
    return state.trainer_image


def _placeholder_note(image: str, model: str) -> str:
    """Said in the file when the trials would run plain Python: before the first cluster delivery
    there is no signed trainer image to name, and inventing a digest is not an option."""
    from sluice.environment import PYTHON_IMAGE

    if image != PYTHON_IMAGE:
        return ""
    return (
        "# PLACEHOLDER trainer image: plain python:3.11-slim (no Sluice inside), because no trainer image\n"
        "# has been delivered to staging yet. Trials would fail. After the first delivery, render again\n"
        f"# (`sluice tune --katib <this file> --schedule apps/{model}/training/retraining.yaml`: it reads\n"
        "# the staging overlay's sluice.dev/trainer-image) before syncing sluice-training.\n"
    )


def _validate(experiment: dict) -> None:
    from sluice.lint import katib, pins

    try:
        swagger = pins.pinned_file(katib.SWAGGER_PIN)
    except SluiceError as exc:
        raise SluiceError(f"cannot validate the Experiment: {exc}") from exc
    errors = [f for f in katib.experiment_findings(experiment, swagger) if f.severity == "error"]
    if errors:
        from sluice.lint.findings import dotted

        raise SluiceError(
            f"the rendered Experiment is invalid at {dotted(errors[0].keys)}: {errors[0].message}"
        )


def render_katib(args: argparse.Namespace) -> int:
    from ml.tuning import katib
    from ml.tuning.space import default_path, load
    from sluice.atomic import write_text
    from sluice.cli.trigger import _root, shown
    from sluice.triggers import schedule

    root = _root()
    if args.schedule:
        declared = schedule.load(args.schedule)
    else:
        model = load(args.space).model if args.space else None
        if model is None:
            raise SluiceError("--katib needs --space FILE or --schedule FILE to know the model")
        declared = schedule.load(schedule.default_path(root, model))
    space = load(args.space or default_path(declared.model))
    if space.model != declared.model:
        raise SluiceError(
            f"search space {space.path} is for {space.model!r}, the schedule for {declared.model!r}"
        )
    cluster = katib.ClusterInputs(
        namespace=declared.namespace,
        data=declared.current,
        contract=declared.contract,
        claim=declared.claim,
        service_account=declared.tune_account,
        trainer_image=_trainer_image(args, root, space.model),
    )
    experiment = katib.render(space, cluster, shown(space.path))
    _validate(experiment)
    target = Path(args.katib)
    text = katib.to_yaml(experiment, _placeholder_note(cluster.trainer_image, space.model))
    if target.is_file() and target.read_text(encoding="utf-8") == text:
        print(f"sluice: {shown(target)} unchanged (Experiment {experiment['metadata']['name']})")
        return 0
    write_text(target, text)
    name = experiment["metadata"]["name"]
    print(f"sluice: wrote {shown(target)} (Experiment {name}, image {cluster.trainer_image})")
    return 0
