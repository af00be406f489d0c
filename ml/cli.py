"""Verbs of the training side: `sluice run`, `sluice submit`, `sluice data demo`.

Only argparse here at import time; every handler imports what it needs, so `sluice lint` and an
unchanged `sluice run` never pay for kfp, MLflow or scikit-learn.
"""

from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run",
        help="train on the local KFP runner, gate, and register the winner as challenger",
        description="Run the training pipeline locally (KFP local runner, MLflow on SQLite under --home). "
        "Without --data it trains on the seeded demo data set.",
    )
    run.add_argument("--data", help="CSV or Parquet snapshot to train on (default: the demo data)")
    run.add_argument("--contract", help="data contract YAML for --data")
    run.add_argument("--reference", help="reference snapshot for drift (default: --data itself)")
    run.add_argument(
        "--policy", help="gate policy YAML (default: gates/policies/<model>.yaml or the defaults)"
    )
    run.add_argument(
        "--home", help="working directory for MLflow, artifacts, evidence (default: .sluice or $SLUICE_HOME)"
    )
    run.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or SQLite in --home)"
    )
    run.add_argument(
        "--only-on-drift",
        action="store_true",
        help="train only when the data gate detects drift (otherwise a no-op run with evidence)",
    )
    run.add_argument(
        "--repo",
        help="GitOps repository to promote a passing version into, as local branch "
        "promote/<model>/staging-v<N> (default: the git work tree of the current directory)",
    )
    run.add_argument(
        "--no-promote", action="store_true", help="register the passing version, but do not promote it"
    )
    run.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=_run)

    submit = subparsers.add_parser(
        "submit",
        help="compile the pipeline for a trainer image and submit it to a Kubeflow Pipelines cluster",
    )
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
    submit.set_defaults(func=_submit)

    data = subparsers.add_parser("data", help="data utilities")
    data_sub = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    demo = data_sub.add_parser(
        "demo", help="write the seeded credit-default demo (reference, current, contract)"
    )
    demo.add_argument("--out", required=True, help="directory to write into")
    demo.add_argument("--seed", type=int, default=None, help="generator seed (default: the demo's own)")
    demo.add_argument("--reference-rows", type=int, default=None)
    demo.add_argument("--current-rows", type=int, default=None)
    demo.set_defaults(func=_demo)


def _run(args: argparse.Namespace) -> int:
    from ml.local_run import run

    if args.seed is None:
        from ml.training.candidates import DEFAULT_SEED

        args.seed = DEFAULT_SEED
    return run(args, sys.stdout).exit_code


def _submit(args: argparse.Namespace) -> int:
    from ml.submit import submit

    return submit(args)


def _demo(args: argparse.Namespace) -> int:
    from ml.data import demo
    from ml.errors import SluiceError

    settings = {
        "seed": demo.DEFAULT_SEED if args.seed is None else args.seed,
        "reference_rows": demo.REFERENCE_ROWS if args.reference_rows is None else args.reference_rows,
        "current_rows": demo.CURRENT_ROWS if args.current_rows is None else args.current_rows,
    }
    if settings["reference_rows"] < 1 or settings["current_rows"] < 1:
        raise SluiceError("--reference-rows and --current-rows must be at least 1")
    files = demo.write_demo(args.out, **settings)
    for name, sha in files.sha256s().items():
        print(f"{sha}  {files.reference.parent / name}")
    return 0
