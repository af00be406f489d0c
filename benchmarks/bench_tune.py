"""Benchmark: `sluice tune` on the demo model, trials per minute and the best F1 found vs the defaults.

    python benchmarks/bench_tune.py                    # the committed space, 20 trials, 2 at a time
    python benchmarks/bench_tune.py --trials 8 --jobs 1 --current-rows 8000

What it runs: the real command, `sluice tune`, in a subprocess on a fresh Sluice home (a new
SQLite MLflow store and Optuna study) with the seeded demo data (`current.csv`, 20 000 rows by
default) and the committed search space `ml/tuning/spaces/credit-default.yaml` (the random
forest). A trial is one 3-fold cross-validation on the pipeline's training split, logged as an
MLflow child run.

The anchor, measured in the same run on the same split: one cross-validation of the current
(default) parameters, timed in this process without Optuna or MLflow, repeated --anchor-repeats
times (median). "Anchor trials per minute" is what a loop of bare cross-validations of the default
forest would reach; the trials of the search differ in size (n_estimators 40-200, depth 4-20), so
the ratio shows the search's cost per trial, not only the bookkeeping.

Quality: the best cross-validated F1 of the study next to the defaults' (the baseline `sluice
tune` itself measures on the same folds), and, to check the gain is not an artefact of the folds
searched on, both configurations fitted on the training split and scored on the validation split,
which tuning never sees. Printed, never asserted: the machine is shared and the load is printed.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

HERE = Path(__file__).resolve()
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO))

MODEL = "credit-default"


def run_tune(home: Path, data, contract, out: Path, trials: int, jobs: int) -> tuple[float, str]:
    """Wall seconds of `sluice tune` and its stdout; exits the benchmark if the command fails."""
    command = [
        sys.executable, "-m", "sluice", "tune",
        "--data", str(data), "--contract", str(contract),
        "--home", str(home), "--out", str(out),
        "--trials", str(trials), "--jobs", str(jobs),
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("MLFLOW_TRACKING_URI", None)
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"sluice tune failed (exit {done.returncode}):\n{done.stdout}{done.stderr}")
    return seconds, done.stdout


def anchor_seconds(split, metric: str, folds: int, repeats: int) -> list[float]:
    """Bare cross-validations of the current parameters: the same work a trial does, nothing else."""
    from ml.tuning.objective import cross_validate

    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        cross_validate(split, {}, metric, folds)
        times.append(time.perf_counter() - started)
    return times


def validation_f1(data: Path, contract_path: Path, candidate: str, params: dict) -> float:
    """The candidate fitted on the pipeline's training split, scored on its validation split."""
    from sklearn.pipeline import Pipeline

    from ml.data.contract import load_contract, load_snapshot
    from ml.training.candidates import (
        DEFAULT_HOLDOUT_FRACTION,
        DEFAULT_SEED,
        DEFAULT_VALIDATION_FRACTION,
        build_estimator,
    )
    from ml.training.evaluate import binary_target, score
    from ml.training.features import build_preprocessor
    from ml.training.parameters import effective_candidates
    from ml.training.split import stratified_split

    contract = load_contract(contract_path)
    frame, _, _ = load_snapshot(data, contract)
    frame = frame[frame[contract.label].notna()]
    train, validation, _ = stratified_split(
        frame,
        contract.label,
        seed=DEFAULT_SEED,
        validation_fraction=DEFAULT_VALIDATION_FRACTION,
        holdout_fraction=DEFAULT_HOLDOUT_FRACTION,
    )
    candidates, _ = effective_candidates(contract.name, None)
    cand = next(c for c in candidates if c["name"] == candidate)
    model = Pipeline(
        [
            ("prepare", build_preprocessor(contract)),
            ("model", build_estimator(cand["model_type"], {**cand["params"], **params}, DEFAULT_SEED)),
        ]
    )
    model.fit(train, binary_target(train[contract.label], contract.positive_class))
    truth = binary_target(validation[contract.label], contract.positive_class)
    return float(score(model, validation, truth)["f1"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=2, help="trials at once (capped by the core count)")
    parser.add_argument("--current-rows", type=int, default=20_000, help="rows of the demo snapshot")
    parser.add_argument("--anchor-repeats", type=int, default=3)
    args = parser.parse_args()

    from ml.data.demo import write_demo
    from ml.training.parameters import load as load_parameters
    from ml.tuning.objective import load_split
    from ml.tuning.space import default_path, load

    space = load(default_path(MODEL))
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        base = Path(tmp)
        demo = write_demo(base / "data", reference_rows=1000, current_rows=args.current_rows)
        split = load_split(demo.current, demo.contract, space.candidate)
        load_before = os.getloadavg()
        anchor = anchor_seconds(split, space.metric, space.folds, args.anchor_repeats)
        out = base / "tuned.yaml"
        wall, stdout = run_tune(base / "home", demo.current, demo.contract, out, args.trials, args.jobs)
        load_after = os.getloadavg()
        written = load_parameters(out, MODEL)
        best_params = written["candidates"][space.candidate]
        tuned = written["tuned"]
        trials_done = sum(v for k, v in tuned["trials"].items() if k in ("complete", "pruned", "failed"))
        default_val = validation_f1(demo.current, demo.contract, space.candidate, {})
        best_val = validation_f1(demo.current, demo.contract, space.candidate, best_params)

    jobs_line = re.search(r"\((\d+) at a time\)", stdout)
    study_s = re.search(r" in ([\d.]+) s \(MLflow parent run", stdout)
    anchor_median = statistics.median(anchor)
    print(f"bench_tune: demo {MODEL}, {args.current_rows} rows, space {space.path.name}")
    print(f"  cores {os.cpu_count()}, load average before {load_before[0]:.2f}, after {load_after[0]:.2f}")
    print(f"  trials run at once: {jobs_line.group(1) if jobs_line else '?'}; counts {tuned['trials']}")
    print()
    print(f"  {'measure':<52} {'sluice tune':>12} {'anchor':>10}")
    study_seconds = float(study_s.group(1)) if study_s else wall
    print(f"  {'trials per minute (study, excl. process start)':<52} "
          f"{trials_done / study_seconds * 60:>12.1f} {60 / anchor_median:>10.1f}")  # fmt: skip
    print(f"  {'trials per minute (wall, whole command)':<52} {trials_done / wall * 60:>12.1f}")
    print(f"  {'seconds per trial (anchor: median bare CV, defaults)':<52} "
          f"{study_seconds / trials_done:>12.2f} {anchor_median:>10.2f}")  # fmt: skip
    print()
    metric = space.metric
    print(f"  {'F1':<52} {'best':>12} {'defaults':>10}")
    print(f"  {f'cross-validated {metric} on the training split ({space.folds} folds)':<52} "
          f"{tuned['objective']['best']:>12.4f} {tuned['objective']['baseline']:>10.4f}")  # fmt: skip
    print(f"  {'validation split (unseen by tuning)':<52} {best_val:>12.4f} {default_val:>10.4f}")
    print()
    print(f"  best parameters: {yaml.safe_dump(best_params, default_flow_style=True).strip()}")
    print(f"  anchor runs (s): {', '.join(f'{t:.2f}' for t in anchor)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
