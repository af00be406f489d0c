"""The local twin of the Katib Experiment: the same search space, run here with Optuna.

What maps to what (docs/continuous-training.md has the table): Katib's `multivariate-tpe` is
Optuna's `TPESampler(multivariate=True, constant_liar=True)` seeded from the space; trials run in
threads, `min(budget.parallel, cores)` at once; a trial that raises is FAILED and, as in Katib,
the search stops (failed) once `budget.max_failed` trials have failed; median stopping prunes on
the per-fold values. Seeded sequential runs repeat exactly; parallel runs do not (which trial
finishes first decides what TPE sees next).

The study lives in SQLite under the Sluice home, so a killed `sluice tune` resumes: trials it left
RUNNING are marked failed-and-interrupted (not counted against budget or failure limit) and their
parameters queued again; finished trials are never repeated. Two details make that true: the
sampler's seed is offset by the number of stored trials (a fresh sampler with the old seed would
replay the first draws), and a proposal equal to a finished trial reuses its value.

Tuning only writes the best parameters to a file: nothing is registered or promoted, and the
model trained with them still passes through both gates on the next `sluice run`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ml.tuning import objective as obj
from ml.tuning.space import SearchSpace, study_fingerprint
from ml.tuning.tracking import StudyRuns
from sluice import tags
from sluice.errors import Refused, SluiceError

INTERRUPTED = "interrupted"  # user attribute of a trial a killed process left RUNNING
PARENT_ATTR = "mlflow_parent_run_id"
BASELINE_ATTR = "baseline_value"


@dataclass(frozen=True)
class TuneRequest:
    space: SearchSpace
    data: Path
    contract: Path
    home: Path  # the Sluice home: the study's SQLite file lives under tuning/<model>/
    tracking_uri: str
    artifact_root: str
    params_file: Path | None  # the training parameters the trials start from
    trials: int  # budget (the space's, or --trials)
    jobs: int  # trials at once


@dataclass
class TuneResult:
    study: str
    storage: str
    parent_run_id: str
    counts: dict[str, int]
    best_value: float | None
    best_params: dict[str, Any] | None
    baseline_value: float
    recovered: int
    data_sha256: str
    seconds: float


def storage_url(home: Path, model: str) -> str:
    path = home / "tuning" / model / "optuna.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def trial_jobs(space: SearchSpace, requested: int | None = None) -> int:
    """Trials at once: as asked, never more than the space allows or the machine has cores."""
    wanted = requested or space.parallel
    return max(1, min(wanted, space.parallel, os.cpu_count() or 1))


def _optuna():
    import optuna

    # Optuna logs a failed trial as a warning with its traceback; the trial's one-line error is
    # printed (and kept on its MLflow run) instead.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    return optuna


def open_study(space: SearchSpace, name: str, storage: str, offset: int = 0):
    optuna = _optuna()
    sampler = optuna.samplers.TPESampler(
        seed=space.seed + offset,
        n_startup_trials=space.startup_trials,
        multivariate=True,
        constant_liar=True,
    )
    stop = space.early_stopping
    pruner = (
        optuna.pruners.MedianPruner(
            n_startup_trials=stop["min_trials"], n_warmup_steps=stop.get("start_step", 1) - 1
        )
        if stop
        else optuna.pruners.NopPruner()
    )
    rdb = optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 60}})
    return optuna.create_study(
        study_name=name,
        storage=rdb,
        sampler=sampler,
        pruner=pruner,
        direction=space.direction,
        load_if_exists=True,
    )


def counted(study) -> dict[str, int]:
    """Finished trials by state, as Katib counts them (interrupted ones are not counted at all)."""
    from optuna.trial import TrialState

    out = {"complete": 0, "pruned": 0, "failed": 0, INTERRUPTED: 0, "running": 0}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get(INTERRUPTED):
            out[INTERRUPTED] += 1
        elif t.state == TrialState.COMPLETE:
            out["complete"] += 1
        elif t.state == TrialState.PRUNED:
            out["pruned"] += 1
        elif t.state == TrialState.FAIL:
            out["failed"] += 1
        elif t.state == TrialState.RUNNING:
            out["running"] += 1
    return out


def recover_interrupted(study, runs: StudyRuns) -> int:
    """Trials a killed process left RUNNING: failed-and-interrupted, their parameters queued again.

    Safe because one `sluice tune` works on a study at a time (the CLI holds a lock on it).
    """
    from optuna.trial import TrialState

    recovered = 0
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study._storage.set_trial_user_attr(t._trial_id, INTERRUPTED, True)  # no public API for this
        study.tell(t.number, state=TrialState.FAIL)
        if t.user_attrs.get("mlflow_run_id"):
            runs.tag(t.user_attrs["mlflow_run_id"], tags.TUNING_STATE, INTERRUPTED)
            runs.end(t.user_attrs["mlflow_run_id"], "KILLED")
        if t.params:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})
        recovered += 1
    for child in runs.children():  # killed between creating its run and recording it in the trial
        if child.info.status == "RUNNING":
            runs.tag(child.info.run_id, tags.TUNING_STATE, INTERRUPTED)
            runs.end(child.info.run_id, "KILLED")
    return recovered


def suggest(trial, space: SearchSpace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for p in space.parameters:
        if p.type == "int":
            step = int(p.step) if p.step else 1
            params[p.name] = trial.suggest_int(p.name, int(p.low), int(p.high), step=step, log=p.log)
        elif p.type == "float":
            params[p.name] = trial.suggest_float(p.name, p.low, p.high, step=p.step, log=p.log)
        else:
            params[p.name] = trial.suggest_categorical(p.name, list(p.choices))
    return params


class Objective:
    """One trial: suggest, log a child run, cross-validate with per-fold reports, close the run."""

    def __init__(
        self, space: SearchSpace, split: obj.TrainingSplit, runs: StudyRuns, study_name: str, out: TextIO
    ):
        self.space, self.split, self.runs, self.study_name, self.out = space, split, runs, study_name, out

    def __call__(self, trial) -> float:
        optuna = _optuna()
        params = suggest(trial, self.space)
        earlier = _finished_with(trial, params)
        attrs = {k: v for k, v in trial.user_attrs.items() if k == "retry_of"}
        run_id = self.runs.start_trial(self.study_name, trial.number, params, attrs)
        trial.set_user_attr("mlflow_run_id", run_id)
        if earlier is not None:  # TPE proposed a finished point again: reuse it, never train twice
            trial.set_user_attr("duplicate_of", earlier.number)
            return self._close(run_id, earlier.value, "duplicate")

        def report(step: int, value: float) -> None:
            trial.report(value, step)
            self.runs.metric(run_id, self.space.metric, value, step)
            if trial.should_prune():
                raise optuna.TrialPruned(f"below the median at fold {step + 1}")

        try:
            value = obj.cross_validate(self.split, params, self.space.metric, self.space.folds, report)
        except optuna.TrialPruned:
            self.runs.tag(run_id, tags.TUNING_STATE, "pruned")
            self.runs.end(run_id, "FINISHED")
            raise
        except Exception as exc:
            self.runs.tag(run_id, tags.TUNING_STATE, "failed")
            self.runs.tag(run_id, tags.PREFIX + "tuning.error", _one_line(exc))
            self.runs.end(run_id, "FAILED")
            self.out.write(f"sluice: trial {trial.number} failed: {_one_line(exc)[:300]}\n")
            raise
        return self._close(run_id, value, "complete")

    def _close(self, run_id: str, value: float, state: str) -> float:
        self.runs.metric(run_id, self.space.metric, value, self.space.folds)
        self.runs.tag(run_id, tags.TUNING_STATE, state)
        self.runs.end(run_id, "FINISHED")
        return value


def _finished_with(trial, params: dict[str, Any]):
    from optuna.trial import TrialState

    for done in trial.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if done.params == params:
            return done
    return None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:500]


def _stop_when(budget: int, max_failed: int):
    """Katib's end conditions: the budget is spent, or max_failed trials failed (>=, as Katib)."""

    def callback(study, _trial) -> None:
        n = counted(study)
        if n["complete"] + n["pruned"] + n["failed"] >= budget:
            study.stop()
        if max_failed and n["failed"] >= max_failed:
            study.stop()

    return callback


def run_study(request: TuneRequest, out: TextIO) -> TuneResult:
    """Run (or resume) the study until its budget is spent or too many trials failed."""
    started = time.perf_counter()
    space = request.space
    split = obj.load_split(request.data, request.contract, space.candidate, request.params_file)
    fixed = {k: v for k, v in split.base_params.items() if k not in {p.name for p in space.parameters}}
    name = f"{space.model}-{study_fingerprint(space, split.data_sha256, repr(sorted(fixed.items())))}"
    storage = storage_url(request.home, space.model)
    study = open_study(space, name, storage)
    runs = StudyRuns.open(
        request.tracking_uri, request.artifact_root, space.model, name, study.user_attrs.get(PARENT_ATTR)
    )
    study.set_user_attr(PARENT_ATTR, runs.parent_id)
    recovered = recover_interrupted(study, runs)
    baseline = _baseline(study, space, split, runs, out)
    n = counted(study)
    done = n["complete"] + n["pruned"] + n["failed"]
    left = request.trials - done
    out.write(
        f"sluice: study {name} ({storage.removeprefix('sqlite:///')}): {done} "
        f"of {request.trials} trials done, {recovered} interrupted trial(s) recovered, {max(left, 0)} to run "
        f"({request.jobs} at a time)\n"
    )
    if left > 0 and (not space.max_failed or n["failed"] < space.max_failed):
        resumed = open_study(space, name, storage, offset=len(study.get_trials(deepcopy=False)))
        resumed.optimize(
            Objective(space, split, runs, name, out),
            n_trials=left,
            n_jobs=request.jobs,
            catch=(Exception,),
            callbacks=[_stop_when(request.trials, space.max_failed)],
            gc_after_trial=False,
        )
    result = _result(study, name, storage, runs, baseline, recovered, split, space, started)
    failed_search = bool(space.max_failed) and result.counts["failed"] >= space.max_failed
    summary = {f"trials_{k}": v for k, v in result.counts.items()}
    if result.best_value is not None:
        summary[f"best_{space.metric}"] = result.best_value
    runs.finish_parent(summary, result.best_params, "FAILED" if failed_search else "FINISHED")
    return result


def _baseline(study, space: SearchSpace, split: obj.TrainingSplit, runs: StudyRuns, out: TextIO) -> float:
    """The current parameters' score on the same folds, once per study: what the best is compared with."""
    if BASELINE_ATTR in study.user_attrs:
        return float(study.user_attrs[BASELINE_ATTR])
    value = obj.cross_validate(split, {}, space.metric, space.folds)
    study.set_user_attr(BASELINE_ATTR, value)
    runs.metric(runs.parent_id, f"baseline_{space.metric}", value)
    out.write(f"sluice: current parameters score {space.metric}={value:.4f} (the baseline)\n")
    return value


def _result(study, name, storage, runs, baseline, recovered, split, space, started) -> TuneResult:
    from optuna.trial import TrialState

    n = counted(study)
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best = None
    if complete:
        pick = max if space.direction == "maximize" else min
        best = pick(complete, key=lambda t: (t.value, -t.number) if pick is max else (t.value, t.number))
    return TuneResult(
        study=name,
        storage=storage,
        parent_run_id=runs.parent_id,
        counts=n,
        best_value=None if best is None else float(best.value),
        best_params=None if best is None else dict(best.params),
        baseline_value=baseline,
        recovered=recovered,
        data_sha256=split.data_sha256,
        seconds=round(time.perf_counter() - started, 3),
    )


def verdict(result: TuneResult, space: SearchSpace) -> None:
    """Refuse (exit 1) a search that failed as Katib would fail it; nothing is written then."""
    failed = result.counts["failed"]
    if space.max_failed and failed >= space.max_failed:
        raise Refused(
            f"{failed} trial(s) failed, the search space allows {space.max_failed - 1} "
            f"(budget.max_failed {space.max_failed}): the search failed and nothing was written; "
            f"see the failed child runs of MLflow run {result.parent_run_id}"
        )
    if result.best_params is None:
        raise Refused(f"no trial completed in study {result.study}: nothing to write")


def write_best(result: TuneResult, space: SearchSpace, path: Path) -> Path:
    """The best trial's parameters as the model's training parameters, with where they came from."""
    from ml.training import parameters

    current: dict[str, dict] = {}
    existing = parameters.resolve(space.model, path if Path(path).is_file() else None)
    if existing is not None:
        current = parameters.load(existing, space.model)["candidates"]
    overrides = {**current, space.candidate: {**current.get(space.candidate, {}), **result.best_params}}
    tuned = {
        "study": result.study,
        "search_space": _shown(space.path),
        "search_space_sha256": space.sha256,
        "data_sha256": result.data_sha256,
        "objective": {
            "metric": space.metric,
            "direction": space.direction,
            "folds": space.folds,
            "best": round(result.best_value, 6),
            "baseline": round(result.baseline_value, 6),
        },
        "trials": {k: v for k, v in result.counts.items() if k != "running"},
        "mlflow_parent_run_id": result.parent_run_id,
    }
    return parameters.write(path, space.model, overrides, tuned)


def _shown(path: Path) -> str:
    """Repository-relative when inside the checkout, so the file does not carry one machine's layout."""
    root = Path(__file__).resolve().parents[2]
    try:
        return str(Path(path).resolve().relative_to(root))
    except ValueError:
        return str(path)


@contextlib.contextmanager
def exclusive(home: Path, model: str) -> Iterator[None]:
    """One `sluice tune` per study store at a time: recovering "interrupted" trials of a live process
    would corrupt its study, so a second process is refused instead of waiting."""
    lock_path = home / "tuning" / model / "study.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SluiceError(
                f"another `sluice tune` is running on {lock_path.parent} (lock {lock_path.name}); "
                "wait for it or use another --home"
            ) from exc
        yield
