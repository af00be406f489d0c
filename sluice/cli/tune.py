"""`sluice tune`: the model's search space, run here with Optuna (the local twin of its Katib Experiment).

Trials log to MLflow as child runs of one parent run; the best trial's parameters are written as
the model's training parameters (`ml/training/tuned/<model>.yaml` unless --out), which the next
`sluice run`, `sluice submit` and the Katib Experiment read. Tuning never registers or promotes:
the model trained with the new parameters still has to pass both gates. `--katib FILE` renders the
same search space as a Katib Experiment instead of running it.

Exit 0 with the parameters written, 1 when the search failed (too many failed trials, as Katib
fails an Experiment), 2 for bad input (the search space, the data, the options).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    tune = subparsers.add_parser(
        "tune",
        help=summary,
        description="Search a candidate's hyperparameters on this machine (Optuna, seeded, trials in "
        "parallel up to the core count), log every trial to MLflow, write the best as the training "
        "parameters. Killing it and running it again resumes the study.",
    )
    tune.add_argument("--data", help="CSV or Parquet snapshot to tune on (default: the demo data)")
    tune.add_argument("--contract", help="data contract YAML for --data")
    tune.add_argument("--space", help="search space YAML (default: ml/tuning/spaces/<model>.yaml)")
    tune.add_argument("--trials", type=int, help="trial budget (default: the space's budget.trials)")
    tune.add_argument(
        "--jobs", type=int, help="trials at once (default: budget.parallel, at most the core count)"
    )
    tune.add_argument(
        "--params",
        metavar="FILE",
        help="training parameters the trials start from (default: ml/training/tuned/<model>.yaml if any)",
    )
    tune.add_argument(
        "--out",
        metavar="FILE",
        help="where to write the best parameters (default: ml/training/tuned/<model>.yaml)",
    )
    tune.add_argument("--home", help="Sluice home: the study's storage and MLflow (default: .sluice)")
    tune.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or --home)")
    katib = tune.add_argument_group("render the Katib Experiment instead of running the search")
    katib.add_argument("--katib", metavar="FILE", help="write the Experiment for the search space here")
    katib.add_argument(
        "--trainer-image", metavar="REF@sha256:...", help="the signed trainer image the trials run"
    )
    katib.add_argument(
        "--schedule",
        metavar="FILE",
        help="the model's retraining declaration: the data paths and namespace the trials use "
        "(default: apps/<model>/training/retraining.yaml)",
    )
    tune.set_defaults(func=run_tune)


def _inputs(args: argparse.Namespace, home) -> tuple[Path, Path]:
    if args.data is None:
        if args.contract:
            raise SluiceError("--contract needs --data (without --data the demo data set is used)")
        from ml.data.demo import ensure_demo

        files = ensure_demo(home.data / "credit-default")
        return files.current, files.contract
    if not args.contract:
        raise SluiceError("--data needs --contract (the data contract YAML describing its columns)")
    data, contract = Path(args.data).resolve(), Path(args.contract).resolve()
    for role, path in (("data", data), ("contract", contract)):
        if not path.is_file():
            raise SluiceError(f"{role} file not found: {path}")
    return data, contract


def _space(args: argparse.Namespace, model: str):
    from ml.tuning.space import default_path, load

    path = Path(args.space) if args.space else default_path(model)
    if not path.is_file():
        raise SluiceError(f"search space not found: {path} (declare one, or pass --space FILE)")
    space = load(path)
    if space.model != model:
        raise SluiceError(f"search space {path} is for model {space.model!r}, the contract for {model!r}")
    return space


def run_tune(args: argparse.Namespace) -> int:
    if args.katib:
        from sluice.cli.tune_katib import render_katib

        return render_katib(args)
    for flag in ("trainer_image", "schedule"):
        if getattr(args, flag):
            raise SluiceError(f"--{flag.replace('_', '-')} is only for --katib (rendering the Experiment)")
    if args.trials is not None and args.trials < 1:
        raise SluiceError(f"--trials must be at least 1, got {args.trials}")
    if args.jobs is not None and args.jobs < 1:
        raise SluiceError(f"--jobs must be at least 1, got {args.jobs}")
    from ml.registry.client import artifact_root_for
    from ml.runners.local import contract_name
    from ml.training import parameters
    from ml.tuning import study
    from sluice import paths

    home = paths.home(args.home).ensure()
    data, contract = _inputs(args, home)
    model = contract_name(contract)
    space = _space(args, model)
    params_file = parameters.resolve(model, args.params)
    out_path = Path(args.out).resolve() if args.out else parameters.default_path(model)
    tracking_uri = paths.tracking_uri(home.root, args.tracking_uri)
    request = study.TuneRequest(
        space=space,
        data=data,
        contract=contract,
        home=home.root,
        tracking_uri=tracking_uri,
        artifact_root=artifact_root_for(tracking_uri, home.artifacts),
        params_file=params_file,
        trials=args.trials or space.trials,
        jobs=study.trial_jobs(space, args.jobs),
    )
    with study.exclusive(home.root, model):
        result = study.run_study(request, sys.stdout)
    counts = ", ".join(f"{v} {k}" for k, v in result.counts.items() if v)
    print(f"sluice: {counts} in {result.seconds:.1f} s (MLflow parent run {result.parent_run_id})")
    study.verdict(result, space)
    written = study.write_best(result, space, out_path)
    gain = result.best_value - result.baseline_value
    print(
        f"sluice: best {space.metric}={result.best_value:.4f} "
        f"(current parameters {result.baseline_value:.4f}, "
        f"{gain:+.4f}) with {_shown(result.best_params)}"
    )
    better = gain > 0 if space.direction == "maximize" else gain < 0
    if not better:
        print(
            "sluice: note: no trial beat the current parameters on these folds; the file records both "
            "scores (tuned.objective): review before committing it"
        )
    print(
        f"sluice: wrote {written}; nothing registered or promoted: the next `sluice run` trains with "
        "these parameters and its gates decide"
    )
    return 0


def _shown(params: dict | None) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
