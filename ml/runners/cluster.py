"""`sluice submit`: the same pipeline, compiled for a cluster and uploaded with `kfp.Client`.

Verified here only as far as the compiled package and the run arguments (there is no Kubeflow
cluster on this machine); the upload itself is the plain documented `kfp.Client` call.

The trainer image must be pinned by digest and must contain this project: components import
`ml` and `gates` from it and never pip-install at run time. Data paths are passed through as
they are: the pods must see the files at the same paths (e.g. a volume mounted there); their
sha256 is computed here, so the load step refuses bytes that differ from what was submitted.
"""

from __future__ import annotations

import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlparse

from ml.runners import runkey
from sluice import scratch
from sluice.atomic import write_text
from sluice.digest import sha256_file
from sluice.errors import SluiceError
from sluice.git import code_commit

DIGEST_REF = re.compile(r"^[a-z0-9]+(?:[._/:-][a-z0-9]+)*(?::[\w][\w.-]{0,127})?@sha256:[0-9a-f]{64}$")


@dataclass(frozen=True)
class SubmitRequest:
    """What `sluice submit` was asked to do (the CLI builds it from its flags)."""

    host: str
    trainer_image: str
    tracking_uri: str
    data: str
    contract: str
    reference: str | None = None
    experiment: str | None = None
    package_out: str | None = None
    dry_run: bool = False
    wait: bool = False
    timeout: float | None = None
    version_file: str | None = None
    params: str | None = None  # training parameters file (default: ml/training/tuned/<model>.yaml)


@dataclass(frozen=True)
class Submission:
    package: Path
    arguments: dict[str, Any]
    experiment: str
    run_name: str


def validate_image(ref: str) -> str:
    if not DIGEST_REF.match(ref or ""):
        raise SluiceError(f"--trainer-image must be pinned by digest (REF@sha256:<64 hex>), got {ref!r}")
    return ref


def validate_host(host: str) -> str:
    parsed = urlparse(host or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise SluiceError(f"--host must be an http(s) URL of the KFP API, got {host!r}")
    return host.rstrip("/")


def build_submission(args: SubmitRequest, package_dir: Path | None = None) -> Submission:
    """Validate arguments, hash the inputs and compile the pipeline for the trainer image."""
    from ml.data.contract import load_contract
    from ml.pipelines.training import compile_pipeline
    from ml.registry.budget import Budget
    from ml.training.candidates import (
        DEFAULT_HOLDOUT_FRACTION,
        DEFAULT_SEED,
        DEFAULT_SELECTION_TOLERANCE,
        DEFAULT_VALIDATION_FRACTION,
    )

    validate_host(args.host)
    image = validate_image(args.trainer_image)
    if not args.tracking_uri or urlparse(args.tracking_uri).scheme not in ("http", "https"):
        raise SluiceError("--tracking-uri must be the http(s) URL of the MLflow server the pods can reach")
    files = {"data": args.data, "contract": args.contract, "reference": args.reference or args.data}
    for role, path in files.items():
        if not path or not Path(path).is_file():
            raise SluiceError(f"{role} file not found: {path}")
    contract = load_contract(files["contract"])
    from ml.training.parameters import effective_candidates

    candidates, _ = effective_candidates(contract.name, args.params)
    identity = {
        "data_sha256": sha256_file(files["data"]),
        "reference_sha256": sha256_file(files["reference"]),
        "contract_sha256": sha256_file(files["contract"]),
        "code_commit": code_commit(),
        "code_version": runkey.code_fingerprint(),
    }
    params = {
        "seed": DEFAULT_SEED,
        "validation_fraction": DEFAULT_VALIDATION_FRACTION,
        "holdout_fraction": DEFAULT_HOLDOUT_FRACTION,
        "selection_tolerance": DEFAULT_SELECTION_TOLERANCE,
        "candidates": candidates,
    }
    key = runkey.run_key({**identity, "policy_sha256": "", "params": params, "image": image})
    out_dir = Path(package_dir) if package_dir else Path(tempfile.mkdtemp(prefix="sluice-submit-"))
    package = compile_pipeline(out_dir / "training.yaml", base_image=image, budget=Budget.from_env())
    arguments = {
        "data_uri": str(Path(files["data"]).resolve()),
        "reference_uri": str(Path(files["reference"]).resolve()),
        "contract_uri": str(Path(files["contract"]).resolve()),
        "model_name": contract.name,
        "tracking_uri": args.tracking_uri,
        "run_key": key,
        **identity,
        **params,
    }
    return Submission(package, arguments, args.experiment or contract.name, f"{contract.name}-{key[:12]}")


def check_wait_options(args: SubmitRequest) -> None:
    """Usage errors of --wait/--timeout/--version-file, before anything is compiled or submitted."""
    wait, version_file = args.wait, args.version_file
    if version_file and not wait:
        raise SluiceError("--version-file needs --wait (the version exists only once the run has finished)")
    if wait and args.dry_run:
        raise SluiceError("--wait cannot be combined with --dry-run (nothing is submitted to wait for)")
    if args.timeout is not None and args.timeout <= 0:
        raise SluiceError(f"--timeout must be a positive number of seconds, got {args.timeout:g}")
    if version_file:
        parent = Path(version_file).resolve().parent
        if not parent.is_dir():
            raise SluiceError(f"--version-file directory does not exist: {parent}")


def connect(host: str):
    """A `kfp.Client` for the cluster; tests pass a stand-in with the same two methods instead."""
    import warnings

    import kfp

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # kfp's "works only with KFP >= 2.0.0-beta.2"
        return kfp.Client(host=validate_host(host))


def submit(
    args: SubmitRequest,
    connect=connect,
    out: TextIO | None = None,
    before_upload: Callable[[], None] | None = None,
) -> int:
    """Compile and upload; `before_upload` (the CLI's check of the image's lock) runs once every
    argument is validated and the package compiled, before the cluster is contacted."""
    out = out or sys.stdout
    check_wait_options(args)
    with scratch.directory("submit") as tmp:
        submission = build_submission(args, Path(tmp))
        if args.package_out:
            shutil.copyfile(submission.package, args.package_out)
            out.write(f"sluice: compiled {args.package_out} for image {args.trainer_image}\n")
        if args.dry_run:
            out.write(f"sluice: dry run, not submitted ({submission.experiment} / {submission.run_name})\n")
            return 0
        if before_upload is not None:
            before_upload()
        client = _connect(connect, args.host)
        run_id = upload(client, args.host, submission)
    out.write(f"sluice: submitted run {run_id} to {args.host} (experiment {submission.experiment})\n")
    out.flush()
    if not args.wait:
        return 0
    from ml.runners.cluster_outcome import await_registration

    outcome = await_registration(
        client,
        run_id,
        tracking_uri=args.tracking_uri,
        model_name=submission.arguments["model_name"],
        timeout_s=args.timeout,
    )
    if outcome.version is None:
        print(f"sluice: {outcome.reason}", file=sys.stderr)
        return 1
    if args.version_file:
        write_version_file(Path(args.version_file), outcome.version)
    out.write(f"sluice: {outcome.reason}\n")
    return 0


def write_version_file(path: Path, version: str) -> None:
    """The bare number, no newline (a Tekton result), replaced atomically."""
    write_text(path, version)


def _connect(connect, host: str):
    try:
        return connect(host)
    except SluiceError:
        raise
    except Exception as exc:  # kfp raises transport and config errors of many types
        raise SluiceError(f"cannot connect to KFP at {host}: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def upload(client, host: str, submission: Submission) -> str:
    """The one call this machine cannot exercise against a real cluster."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            result = client.create_run_from_pipeline_package(
                str(submission.package),
                arguments=submission.arguments,
                run_name=submission.run_name,
                experiment_name=submission.experiment,
                enable_caching=True,
            )
    except Exception as exc:  # kfp raises transport and API errors of many types
        raise SluiceError(f"cannot submit to KFP at {host}: {_first_line(exc)}") from exc
    return result.run_id
