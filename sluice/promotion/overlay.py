"""The machine-owned file of an overlay: `apps/<model>/overlays/<env>/model-version.yaml`.

Promotion writes exactly one file per environment, a strategic-merge patch of the model's
InferenceService, and nothing else. Keeping what a machine writes apart from what people write
(the kustomization, the serving policy) means a promotion can never reformat or clobber a human
edit, and `git log` of this one path is the environment's promotion history (rollback reads it).

The file is produced from scratch each time from a fixed template, so the same promotion always
yields the same bytes; it is written atomically (temp file + os.replace).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sluice.errors import Refused, SluiceError

FILE_NAME = "model-version.yaml"
ENVIRONMENTS = ("staging", "production")
UNPROMOTED = "unpromoted"

# Annotations the file carries. Argo CD renders `link.argocd.argoproj.io/<title>` as a link on
# the resource; the `sluice.dev/*` ones let `sluice status` and people read the provenance.
ANN_LINK_MLFLOW = "link.argocd.argoproj.io/mlflow"
ANN_LINK_EVIDENCE = "link.argocd.argoproj.io/evidence"
ANN_MODEL = "sluice.dev/registered-model"
ANN_VERSION = "sluice.dev/model-version"
ANN_EVIDENCE_SHA = "sluice.dev/evidence-sha256"
ANN_DATA_SHA = "sluice.dev/data-sha256"
# The signed trainer image (REF@sha256:...) that trained and gated the version (its registry tag
# sluice.trainer_image): what the environment's retraining runs and Katib trials run in.
ANN_TRAINER_IMAGE = "sluice.dev/trainer-image"
LABEL_VERSION = "app.kubernetes.io/version"

HEADER = (
    "# Machine-owned: written by `sluice promote` / `sluice rollback`; change it through them.\n"
    "# Strategic-merge patch of the InferenceService: the model version it serves.\n"
    "# URLs and digests stay on one line each, so greps and diffs see them whole.\n"
    "# yamllint disable rule:line-length\n"
)

_MODEL_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_VERSION = re.compile(r"^[1-9][0-9]{0,9}$")
_PINNED = re.compile(r"^[^\s@]+@sha256:[0-9a-f]{64}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_model_name(model: str) -> str:
    """Model names become directory and resource names: refuse anything that is not a DNS label."""
    if not _MODEL_NAME.match(model or ""):
        raise SluiceError(
            f"invalid model name {model!r}: use lowercase letters, digits and '-' (a DNS label), "
            "as the registered model and apps/<model>/ are named"
        )
    return model


def check_version(version: str | int) -> str:
    text = str(version).strip()
    if text.startswith("v") and _VERSION.match(text[1:]):
        text = text[1:]
    if not _VERSION.match(text):
        raise SluiceError(f"invalid model version {version!r}: expected a positive integer such as 3")
    return text


def check_env(env: str) -> str:
    if env not in ENVIRONMENTS:
        raise SluiceError(f"unknown environment {env!r}: expected one of {', '.join(ENVIRONMENTS)}")
    return env


def is_pinned(image: str) -> bool:
    return bool(_PINNED.match(image or ""))


def require_pinned(image: str, what: str = "image", error: type[SluiceError] = Refused) -> str:
    """Refused (exit 1) by default: an image that is not pinned by digest never ships. Verbs that only
    take the image as an argument to look up or render (trace, tune) pass `error=SluiceError`: for
    them it is bad input (exit 2)."""
    if not is_pinned(image):
        raise error(f"{what} {image!r} is not pinned by digest: expected REF@sha256:<64 hex>")
    return image


def overlay_dir(root: Path, model: str, env: str) -> Path:
    return root / "apps" / model / "overlays" / env


def overlay_file(root: Path, model: str, env: str) -> Path:
    return overlay_dir(root, model, env) / FILE_NAME


def relative_overlay_file(model: str, env: str) -> str:
    """The path inside the repository, as git names it (always forward slashes)."""
    return f"apps/{model}/overlays/{env}/{FILE_NAME}"


@dataclass(frozen=True)
class ModelVersionSpec:
    """What an environment serves. Everything here is immutable: no alias, no tag."""

    resource: str  # the InferenceService's name in the base
    model: str
    version: str
    model_uri: str
    image: str | None = None
    evidence_sha256: str | None = None
    data_sha256: str | None = None
    mlflow_url: str | None = None
    evidence_url: str | None = None
    traffic: int | None = None
    trainer_image: str | None = None

    def identity(self) -> tuple:
        """What makes two promotions the same; links may differ without a new commit."""
        return (self.model, self.version, self.model_uri, self.image, self.evidence_sha256, self.traffic)


def render(spec: ModelVersionSpec) -> str:
    """The file's bytes for `spec`: fixed key order, sorted annotations, no line wrapping."""
    if spec.image is not None:
        require_pinned(spec.image, "serving image")
    if spec.evidence_sha256 is not None and not _HEX64.match(spec.evidence_sha256):
        raise SluiceError(f"evidence digest {spec.evidence_sha256!r} is not a sha256 hex digest")
    if spec.traffic is not None and not 0 <= spec.traffic <= 100:
        raise SluiceError(f"--traffic {spec.traffic} is not a percentage between 0 and 100")
    annotations = {
        ANN_MODEL: spec.model,
        ANN_VERSION: spec.version,
    }
    if spec.evidence_sha256:
        annotations[ANN_EVIDENCE_SHA] = spec.evidence_sha256
    if spec.data_sha256:
        annotations[ANN_DATA_SHA] = spec.data_sha256
    if spec.trainer_image:
        annotations[ANN_TRAINER_IMAGE] = require_pinned(spec.trainer_image, "trainer image")
    if spec.mlflow_url:
        annotations[ANN_LINK_MLFLOW] = spec.mlflow_url
    if spec.evidence_url:
        annotations[ANN_LINK_EVIDENCE] = spec.evidence_url
    model: dict[str, Any] = {}
    if spec.image:
        model["image"] = spec.image
    model["storageUri"] = spec.model_uri
    predictor: dict[str, Any] = {}
    if spec.traffic is not None:
        predictor["canaryTrafficPercent"] = spec.traffic
    predictor["model"] = model
    document = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {
            "name": spec.resource,
            "labels": {LABEL_VERSION: spec.version},
            "annotations": dict(sorted(annotations.items())),
        },
        "spec": {"predictor": predictor},
    }
    body = yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False, width=4096, allow_unicode=False
    )
    return HEADER + body


@dataclass(frozen=True)
class OverlayState:
    """What an overlay file says today (possibly the unpromoted stub)."""

    resource: str | None
    model: str | None
    version: str | None  # None when unpromoted
    model_uri: str | None
    image: str | None
    evidence_sha256: str | None
    data_sha256: str | None
    traffic: int | None
    trainer_image: str | None = None

    def identity(self) -> tuple:
        return (self.model, self.version, self.model_uri, self.image, self.evidence_sha256, self.traffic)


class MalformedOverlay(SluiceError):
    """The file is not an InferenceService patch Sluice wrote (broken YAML, empty, a list, another
    kind). It is machine-owned, so promotion regenerates it; readers name it and carry on."""


def parse(text: str, shown_as: str) -> OverlayState:
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MalformedOverlay(f"{shown_as}: not valid YAML ({str(exc).splitlines()[0]})") from exc
    if not isinstance(doc, dict) or doc.get("kind") != "InferenceService":
        found = "empty" if doc is None else (f"a {doc.get('kind')}" if isinstance(doc, dict) else
                                             f"a YAML {type(doc).__name__}")  # fmt: skip
        raise MalformedOverlay(f"{shown_as}: expected an InferenceService patch, found {found}")
    try:
        return _state(doc)
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedOverlay(f"{shown_as}: malformed InferenceService patch ({exc})") from exc


def _state(doc: dict[str, Any]) -> OverlayState:
    meta = doc.get("metadata") or {}
    ann = meta.get("annotations") or {}
    predictor = ((doc.get("spec") or {}).get("predictor")) or {}
    model = predictor.get("model") or {}
    version = ann.get(ANN_VERSION)
    version = None if version in (None, "", UNPROMOTED) else str(version)
    traffic = predictor.get("canaryTrafficPercent")
    return OverlayState(
        resource=meta.get("name"),
        model=ann.get(ANN_MODEL),
        version=version,
        model_uri=model.get("storageUri"),
        image=model.get("image"),
        evidence_sha256=ann.get(ANN_EVIDENCE_SHA),
        data_sha256=ann.get(ANN_DATA_SHA),
        traffic=int(traffic) if traffic is not None else None,
        trainer_image=ann.get(ANN_TRAINER_IMAGE),
    )


def read(path: Path, shown_as: str | None = None) -> OverlayState | None:
    """The overlay's state, or None when the file does not exist."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    return parse(text, shown_as or str(path))
