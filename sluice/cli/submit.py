"""`sluice submit`: compile the training pipeline for a trainer image and run it on a KFP cluster.

Before anything is uploaded, the trainer image must have been built from the same dependency lock
as this checkout: its `dev.sluice.lock.sha256` label (read from the registry, or given with
--lock-sha256 where the registry cannot be read) must equal the sha256 of the checkout's
requirements.lock. Otherwise the run would train with libraries nobody tested together with this
code; --allow-lock-mismatch submits anyway. A dry run compiles only and does not check.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from sluice.errors import Refused, SluiceError

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    submit = subparsers.add_parser("submit", help=summary)
    submit.add_argument("--host", required=True, help="KFP API URL, e.g. https://kfp.example.com")
    submit.add_argument(
        "--trainer-image", required=True, help="image with Sluice installed, REF@sha256:<digest>"
    )
    submit.add_argument("--tracking-uri", required=True, help="MLflow server URL as seen from the pods")
    submit.add_argument("--data", required=True, help="snapshot path, as mounted in the pods")
    submit.add_argument("--contract", required=True, help="contract path, as mounted in the pods")
    submit.add_argument("--reference", help="reference snapshot path (default: --data)")
    submit.add_argument("--experiment", help="KFP experiment (default: the contract's name)")
    submit.add_argument("--package-out", help="also keep the compiled package at this path")
    submit.add_argument("--dry-run", action="store_true", help="compile and validate, do not submit")
    submit.add_argument(
        "--wait",
        action="store_true",
        help="wait for the run to finish; exit 1 with the reason if it failed or registered nothing",
    )
    submit.add_argument(
        "--timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="with --wait: give up after this long (default: 3600)",
    )
    submit.add_argument(
        "--version-file",
        metavar="PATH",
        help="with --wait: write the model version the run registered here (the number, no newline)",
    )
    lock = submit.add_argument_group("the trainer image's lock (checked before submitting)")
    lock.add_argument(
        "--lock-sha256",
        metavar="SHA256",
        help="the sha256 of the requirements.lock the image was built from, instead of reading its "
        "dev.sluice.lock.sha256 label from the registry",
    )
    lock.add_argument(
        "--allow-lock-mismatch",
        action="store_true",
        help="submit even if the image was built from another lock than this checkout's",
    )
    lock.add_argument("--docker-config", metavar="PATH", help="docker config.json for registry credentials")
    lock.add_argument(
        "--allow-insecure-loopback",
        action="store_true",
        help="read the label over plain HTTP from a registry on localhost/127.0.0.1/::1 (never elsewhere)",
    )
    submit.set_defaults(func=run_submit)


def run_submit(args: argparse.Namespace) -> int:
    from ml.runners.cluster import SubmitRequest, submit

    request = SubmitRequest(
        **{k: getattr(args, k) for k in SubmitRequest.__dataclass_fields__ if hasattr(args, k)}
    )
    if args.lock_sha256 is not None and not _SHA256.match(args.lock_sha256):
        raise SluiceError(f"--lock-sha256 must be 64 lowercase hex digits, got {args.lock_sha256!r}")
    check = None if args.allow_lock_mismatch else (lambda: check_image_lock(args))
    return submit(request, before_upload=check)


def _checkout_lock_sha256() -> str:
    from sluice.digest import sha256_file
    from sluice.environment import checkout_lock
    from sluice.git import work_tree

    lock = checkout_lock((work_tree() or Path.cwd()).resolve())
    if not lock.is_file():
        raise SluiceError(
            f"no {lock.name} in {lock.parent}: run sluice submit in the repository checkout (the trainer "
            "image must match its lock), or pass --allow-lock-mismatch"
        )
    return sha256_file(lock)


def check_image_lock(args: argparse.Namespace) -> None:
    """Refuse a trainer image built from another lock than the checkout's (see the module docstring)."""
    from sluice.environment import LOCK_LABEL

    current = _checkout_lock_sha256()
    image = args.trainer_image
    if args.lock_sha256:
        built, how = args.lock_sha256, "--lock-sha256"
    else:
        from sluice.supply_chain.image_config import image_labels

        try:
            labels = image_labels(
                image, docker_config=args.docker_config, allow_insecure_loopback=args.allow_insecure_loopback
            )
        except SluiceError as exc:
            raise SluiceError(
                f"cannot read the {LOCK_LABEL} label of {image}: {exc}; pass --lock-sha256 <sha256 of the "
                "requirements.lock it was built from> or --allow-lock-mismatch"
            ) from exc
        built, how = labels.get(LOCK_LABEL, ""), f"label {LOCK_LABEL}"
        if not built:
            raise Refused(
                f"trainer image {image} has no {LOCK_LABEL} label, so the lock it was built from is unknown: "
                "build it with --build-arg LOCK_SHA256 (images/Dockerfile), or pass --allow-lock-mismatch"
            )
    if built != current:
        raise Refused(
            f"trainer image {image} was built from lock {built} ({how}), but this checkout's "
            f"requirements.lock is {current}: rebuild the image from this checkout, or pass "
            "--allow-lock-mismatch"
        )
