"""`sluice run`: the laptop loop. Train, gate and register with embedded defaults, then promote.

The training engine (`ml.runners.local`) knows nothing of delivery; this verb composes it with
the laptop promotion (`sluice.promotion.local`): a registered version becomes a commit on local
branch `promote/<model>/staging-v<N>` of the repository the run happens in.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    run = subparsers.add_parser(
        "run",
        help=summary,
        description="Run the training pipeline locally (KFP local runner, MLflow on SQLite under --home). "
        "Without --data it trains on the seeded demo data set.",
    )
    run.add_argument("--data", help="CSV or Parquet snapshot to train on (default: the demo data)")
    run.add_argument("--contract", help="data contract YAML for --data")
    run.add_argument("--reference", help="reference snapshot for drift (default: --data itself)")
    run.add_argument(
        "--policy", help="gate policy YAML (default: gates/gate_policy/<model>.yaml or the defaults)"
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
    run.add_argument(
        "--features",
        action="store_true",
        help="train the demo from the feature store (ml/features): point-in-time training set, skew check "
        "in the model gate; Redis online store when $SLUICE_FEATURE_REDIS is set (docs/features.md)",
    )
    run.add_argument(
        "--params",
        metavar="FILE",
        help="training parameters (default: ml/training/tuned/<model>.yaml when committed; see sluice tune)",
    )
    run.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    run.set_defaults(func=run_verb)


def run_verb(args: argparse.Namespace) -> int:
    from ml.runners.local import RunRequest, run

    if args.repo is not None and not Path(args.repo).is_dir():
        raise SluiceError(f"--repo is not a directory: {args.repo}")  # a usage error before training
    started = time.perf_counter()
    request = RunRequest(
        data=args.data,
        contract=args.contract,
        reference=args.reference,
        policy=args.policy,
        home=args.home,
        tracking_uri=args.tracking_uri,
        only_on_drift=args.only_on_drift,
        seed=args.seed,
        features=args.features,
        params=args.params,
    )
    outcome = run(request, sys.stdout)
    if outcome.record.get("outcome") == "registered":
        promote_version(args, outcome.record, sys.stdout, started)
    return outcome.exit_code


def promote_version(args: argparse.Namespace, record: dict[str, Any], out: TextIO, started: float) -> None:
    """The laptop loop's last step; the record remembers the branch so a re-run can answer cheaply."""
    from ml.runners import records
    from sluice import paths

    home_root = paths.home(args.home).root
    if args.no_promote:
        out.write("  not promoted (--no-promote)\n")
    else:
        from sluice.promotion.local import promote_after_run

        promoting = time.perf_counter()
        promotion = promote_after_run(
            record, repo_option=args.repo, tracking_uri=record["tracking_uri"], home_root=home_root, out=out
        )
        if promotion is not None and promotion != record.get("promotion"):
            record["promotion"] = promotion
            records.write(home_root, record)
        record.setdefault("phases", {})["promote_s"] = round(time.perf_counter() - promoting, 3)
    record["wall_s"] = round(time.perf_counter() - started, 3)
    records.write_last(home_root, record)
    if not record.get("fast_path"):
        out.write(f"  done in {record['wall_s']:.1f} s\n")
