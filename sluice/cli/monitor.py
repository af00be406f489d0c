"""`sluice monitor`: judge a window of served or newly landed data; retrain when it warrants it.

Runs the data gate's checks (drift against --reference included) on --current, records the
evaluation with its evidence in MLflow (`<model>-monitoring`), and when the decision is
`triggered` retrains: locally with the same engine as `sluice run` (then the laptop promotion, as
`sluice run` does), or with --post by sending the signed `sluice_retrain` event to the cluster's
EventListener. A snapshot triggers at most once (by sha256, and by the run key `sluice run` would
use), and at most one retraining per `retrain_cooldown_hours` of the gate policy.

Exit 0 when the window was evaluated (whatever the decision) and any retraining it triggered
registered a version or was posted; 1 when that retraining was refused (a gate, or the listener);
2 for bad input.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser("monitor", help=summary, description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True, help="the model (the data contract's name)")
    p.add_argument("--current", required=True, help="the window to judge: served or newly landed data")
    p.add_argument(
        "--reference", help="the drift baseline (what the model was trained on); required for drift"
    )
    p.add_argument(
        "--contract", help="data contract (default: ml/data/<model>.contract.yaml when there is one)"
    )
    p.add_argument(
        "--policy", help="gate policy: drift thresholds, retrain_cooldown_hours (default: the model's)"
    )
    p.add_argument(
        "--on-new-data",
        action="store_true",
        help="trigger on any snapshot not trained yet (keyed by its sha256), drifted or not",
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument(
        "--post",
        action="store_true",
        help="in a cluster: post the signed retraining event (to the EventListener of the model's "
        "apps/<model>/training/retraining.yaml)",
    )
    where.add_argument(
        "--no-retrain", action="store_true", help="evaluate and record only; never retrain (a dry run)"
    )
    p.add_argument("--schedule", metavar="FILE", help="the retraining declaration for --post")
    p.add_argument(
        "--secret-file", help="with --post: the trigger Secret's value (default: $SLUICE_TRIGGER_SECRET)"
    )
    p.add_argument("--home", help="Sluice home (default: .sluice or $SLUICE_HOME)")
    p.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or --home)")
    p.add_argument("--repo", help="local retraining: promote into this repository (default: the current one)")
    p.add_argument("--no-promote", action="store_true", help="local retraining: register, do not promote")
    p.set_defaults(func=run_monitor)


def _window(args: argparse.Namespace):
    from sluice.triggers.monitor import Window

    current = _file(args.current, "--current")
    if args.reference:
        reference = _file(args.reference, "--reference")
    elif args.on_new_data:
        reference = current  # drift is not the question: the window is its own reference
    else:
        raise SluiceError("--reference is required to judge drift (or pass --on-new-data)")
    if args.contract:
        contract = _file(args.contract, "--contract")
    else:
        from ml.data.contract import SCHEMA_PATH

        contract = SCHEMA_PATH.with_name(f"{args.model}.contract.yaml")
        if not contract.is_file():
            raise SluiceError(f"no contract for {args.model} in ml/data/: pass --contract FILE")
    policy = _file(args.policy, "--policy") if args.policy else None
    from ml.runners.local import contract_name

    if contract_name(contract) != args.model:
        raise SluiceError(
            f"contract {contract} describes {contract_name(contract)!r}, not --model {args.model!r}"
        )
    return Window(args.model, current, reference, contract, policy, "data" if args.on_new_data else "drift")


def _file(path: str, flag: str) -> Path:
    resolved = Path(path).resolve()
    if not resolved.is_file():
        raise SluiceError(f"{flag} file not found: {resolved}")
    return resolved


def already_trained(window, home, tracking_uri: str) -> str | None:
    """ "run key K, version V" when `sluice run` on this window would only answer from its record."""
    from ml.runners import records, runkey
    from ml.runners.local import RunInputs, RunRequest, default_params, identity_for
    from ml.training.parameters import effective_candidates

    candidates, _ = effective_candidates(window.model)
    inputs = RunInputs(window.current, window.reference, window.contract, window.policy, False)
    key = runkey.run_key(identity_for(inputs, default_params(RunRequest(), candidates)))
    record = records.read(home.root, key)
    if not record or record.get("outcome") != "registered" or record.get("tracking_uri") != tracking_uri:
        return None
    if runkey.registry_has_version(tracking_uri, record["model_name"], record["version"], key) is False:
        return None
    return f"run key {key[:12]}, version {record['version']}"


def run_monitor(args: argparse.Namespace) -> int:
    from ml.registry.client import artifact_root_for
    from sluice import paths
    from sluice.triggers import monitor

    if (args.schedule or args.secret_file) and not args.post:
        raise SluiceError("--schedule and --secret-file go with --post (posting the event to a cluster)")
    declared = None
    if args.post:
        from sluice.cli.trigger import load_declaration

        declared = load_declaration(argparse.Namespace(model=args.model, schedule=args.schedule))
    window = _window(args)
    home = paths.home(args.home).ensure()
    tracking_uri = paths.tracking_uri(home.root, args.tracking_uri)
    with monitor.exclusive(home.root, window.model):
        ledger = monitor.Ledger(tracking_uri, artifact_root_for(tracking_uri, home.artifacts), window.model)
        ev = monitor.evaluate(
            window, ledger, home.root / "monitor" / window.model, already_trained(window, home, tracking_uri)
        )
        what = f"{window.kind} check of {window.current.name} (sha256 {ev.data_sha256[:12]})"
        print(f"sluice: {what}: {ev.decision}: {ev.reason}")
        print(f"sluice: evidence {ev.evidence}; recorded as MLflow run {ev.run_id}")
        if not ev.triggered:
            return 0
        if args.no_retrain:
            ledger.outcome(ev.run_id, "not retrained (--no-retrain)")
            print("sluice: not retraining (--no-retrain)")
            return 0
        if declared is not None:
            return _post(args, declared, ev, ledger)
        return _retrain_here(args, window, ev, ledger, tracking_uri)


def _post(args: argparse.Namespace, declared, ev, ledger) -> int:
    from sluice.cli.trigger import _secret, post_event

    accepted = post_event(declared, ev.kind, declared.current, ev.data_sha256, ev.reason, _secret(args))
    ledger.outcome(ev.run_id, "posted" if accepted else "refused by the EventListener")
    return 0 if accepted else 1


def _retrain_here(args: argparse.Namespace, window, ev, ledger, tracking_uri: str) -> int:
    """What `sluice run --data current --reference reference` does: train, gate, register, promote."""
    from ml.runners.local import RunRequest, run
    from sluice.cli.run import promote_version

    if args.repo is not None and not Path(args.repo).is_dir():
        raise SluiceError(f"--repo is not a directory: {args.repo}")
    started = time.perf_counter()
    request = RunRequest(
        data=str(window.current),
        contract=str(window.contract),
        reference=str(window.reference),
        policy=str(window.policy) if window.policy else None,
        home=args.home,
        tracking_uri=tracking_uri,
    )
    try:
        outcome = run(request, sys.stdout)
    except SluiceError as exc:
        ledger.outcome(ev.run_id, f"retraining failed: {exc}")
        raise
    record = outcome.record
    shown = record.get("outcome", "unknown")
    if record.get("version"):
        shown += f" v{record['version']}"
    ledger.outcome(ev.run_id, shown)
    if record.get("outcome") == "registered":
        promote_version(args, record, sys.stdout, started)
    return outcome.exit_code
