"""`sluice tune`, the local twin of the Katib Experiment: trials as MLflow child runs of one parent,
the best parameters written for the next `sluice run`, a killed study resumed without repeating a
finished trial, crashing trials counted against the failure limit, one-line errors for a bad space."""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ml.training import parameters
from ml.tuning.tracking import PARENT_TAG, experiment_name
from sluice import tags
from tests.conftest import wait_until

HERE = Path(__file__).resolve().parent
SPACE = HERE / "tune-space.yaml"
# Katib's StdOut collector's default filter (pkg/metricscollector/v1beta1/common/const.go).
KATIB_METRIC_LINE = re.compile(r"([\w|-]+)\s*=\s*([+-]?\d*(\.\d+)?([Ee][+-]?\d+)?)")


def tune_args(demo_slice, home: Path, out: Path, *extra: str, space: Path = SPACE) -> list[str]:
    return [
        "tune",
        "--data",
        str(demo_slice.current),
        "--contract",
        str(demo_slice.contract),
        "--space",
        str(space),
        "--home",
        str(home),
        "--out",
        str(out),
        *extra,
    ]


def runs_of(home: Path) -> tuple[object, list]:
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(experiment_name("credit-default"))
    return client, client.search_runs([experiment.experiment_id], max_results=1000)


def running_with_a_run(home: Path) -> bool:
    """A trial is RUNNING and has created its MLflow child run: a kill now interrupts it mid-fold."""
    db = home / "tuning" / "credit-default" / "optuna.db"
    with sqlite3.connect(db) as conn:
        return bool(
            conn.execute(
                "SELECT 1 FROM trials t JOIN trial_user_attributes a ON a.trial_id = t.trial_id"
                " WHERE t.state = 'RUNNING' AND a.key = 'mlflow_run_id'"
            ).fetchall()
        )


def trial_states(home: Path) -> list[tuple[int, str, bool]]:
    """(number, state, interrupted) of every trial in the study's SQLite file, read without Optuna."""
    db = home / "tuning" / "credit-default" / "optuna.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT trial_id, number, state FROM trials ORDER BY number").fetchall()
        flagged = {
            r[0]
            for r in conn.execute(
                "SELECT trial_id FROM trial_user_attributes WHERE key = 'interrupted'"
            ).fetchall()
        }
    return [(number, state, trial_id in flagged) for trial_id, number, state in rows]


def test_six_trials_log_six_child_runs_and_write_the_best_parameters(sluice, demo_slice, tmp_path) -> None:
    home, out = tmp_path / "home", tmp_path / "credit-default.yaml"
    done = sluice(*tune_args(demo_slice, home, out))
    assert done.code == 0, done.err
    _, runs = runs_of(home)
    parents = [r for r in runs if PARENT_TAG not in r.data.tags]
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len(parents) == 1 and len(children) == 6
    parent = parents[0]
    assert {c.data.tags[PARENT_TAG] for c in children} == {parent.info.run_id}
    assert all(c.info.status == "FINISHED" and "f1" in c.data.metrics for c in children)
    assert sorted(int(c.data.tags[tags.TUNING_TRIAL]) for c in children) == list(range(6))
    best = max(children, key=lambda c: c.data.metrics["f1"])

    written = parameters.load(out, "credit-default")
    tuned = written["candidates"]["random_forest"]
    assert {k: str(v) for k, v in tuned.items()} == best.data.params
    assert written["tuned"]["objective"]["best"] == pytest.approx(best.data.metrics["f1"], abs=1e-6)
    assert written["tuned"]["trials"]["complete"] == 6
    assert written["tuned"]["mlflow_parent_run_id"] == parent.info.run_id
    assert parent.info.status == "FINISHED" and parent.data.metrics["best_f1"] == pytest.approx(
        best.data.metrics["f1"]
    )
    assert "nothing registered or promoted" in done.out
    objective = written["tuned"]["objective"]
    no_gain = objective["best"] <= objective["baseline"]
    assert ("no trial beat the current parameters" in done.out) is no_gain
    assert not (home / "runs").exists(), "tuning never trains a pipeline run or registers a version"


def test_the_written_parameters_are_what_the_next_run_trains_and_its_run_key(sluice, demo_slice, tmp_path):
    """`sluice run` reads the file: its candidates change, and so does the run key."""
    from ml.runners import runkey
    from ml.runners.local import RunInputs, RunRequest, default_params, identity_for
    from ml.training.parameters import effective_candidates

    out = tmp_path / "credit-default.yaml"
    parameters.write(out, "credit-default", {"random_forest": {"n_estimators": 16, "max_depth": 5}}, {})
    inputs = RunInputs(demo_slice.current, demo_slice.reference, demo_slice.contract, None, False)

    def key(params_file: Path | None) -> str:
        candidates, _ = effective_candidates("credit-default", params_file)
        return runkey.run_key(identity_for(inputs, default_params(RunRequest(), candidates)))

    tuned, _ = effective_candidates("credit-default", out)
    forest = next(c for c in tuned if c["name"] == "random_forest")
    assert forest["params"]["n_estimators"] == 16 and forest["params"]["class_weight"] == "balanced_subsample"
    assert key(out) != key(None) and key(out) == key(out)
    parameters.write(out, "credit-default", {"random_forest": {"n_estimators": 16, "max_depth": 6}}, {})
    assert key(out) != key(None)
    retuned = key(out)
    parameters.write(out, "credit-default", {"random_forest": {"n_estimators": 16, "max_depth": 6}}, {"x": 1})
    assert key(out) == retuned, "provenance alone retrains nothing"


def test_a_killed_study_resumes_without_repeating_a_finished_trial(demo_slice, tmp_path) -> None:
    home, out = tmp_path / "home", tmp_path / "credit-default.yaml"
    command = [sys.executable, "-m", "sluice", *tune_args(demo_slice, home, out, "--jobs", "1")]
    db = home / "tuning" / "credit-default" / "optuna.db"
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    def mid_trial() -> bool:
        if not db.exists():
            return False
        try:
            states = trial_states(home)
        except sqlite3.Error:
            return False
        return sum(s == "COMPLETE" for _, s, _ in states) >= 2 and running_with_a_run(home)

    try:
        wait_until(mid_trial, "two finished trials and a third running", timeout=300, proc=first)
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    left_running = [n for n, s, _ in trial_states(home) if s == "RUNNING"]
    finished_before = [n for n, s, _ in trial_states(home) if s == "COMPLETE"]

    second = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert second.returncode == 0, second.stderr
    assert f"{len(left_running)} interrupted trial(s) recovered" in second.stdout
    states = trial_states(home)
    counted = [n for n, s, interrupted in states if not interrupted and s in ("COMPLETE", "PRUNED", "FAIL")]
    assert len(counted) == 6
    assert sorted(n for n, _, interrupted in states if interrupted) == left_running
    assert set(finished_before) <= {n for n, s, _ in states if s == "COMPLETE"}

    _, runs = runs_of(home)
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert len({c.data.tags[PARENT_TAG] for c in children}) == 1, "the resumed study keeps its parent run"
    trained = [
        c
        for c in children
        if c.info.status == "FINISHED" and c.data.tags.get(tags.TUNING_STATE) == "complete"
    ]
    params = [tuple(sorted(c.data.params.items())) for c in trained]
    assert len(params) == len(set(params)), "a finished trial was trained twice"
    killed = [c for c in children if c.info.status == "KILLED"]
    assert len(killed) == len(left_running) and all(c.info.status != "RUNNING" for c in children)

    third = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert third.returncode == 0 and "0 to run" in third.stdout


def test_crashing_trials_fail_and_stop_the_search_at_the_limit(sluice, demo_slice, tmp_path) -> None:
    """Every trial raises (an invalid max_features); the second failure ends the search, as in Katib."""
    doc = yaml.safe_load(SPACE.read_text())
    doc["parameters"][3]["choices"] = ["not-a-feature-rule"]
    space = tmp_path / "crashing.yaml"
    space.write_text(yaml.safe_dump(doc))
    home, out = tmp_path / "home", tmp_path / "credit-default.yaml"
    done = sluice(*tune_args(demo_slice, home, out, "--jobs", "1", space=space))
    assert done.code == 1
    assert "2 trial(s) failed" in done.err and "budget.max_failed 2" in done.err
    assert len(done.err_lines) == 1
    assert [s for _, s, _ in trial_states(home)] == ["FAIL", "FAIL"]
    assert not out.exists()
    _, runs = runs_of(home)
    children = [r for r in runs if PARENT_TAG in r.data.tags]
    assert [c.info.status for c in children] == ["FAILED", "FAILED"]
    assert all("max_features" in c.data.tags[tags.PREFIX + "tuning.error"] for c in children)


def test_seeded_sequential_studies_repeat_exactly(sluice, demo_slice, tmp_path) -> None:
    import mlflow

    found = []
    for run in ("a", "b"):
        # In-process, `mlflow.set_tracking_uri` leaves MLFLOW_TRACKING_URI behind for the next call.
        mlflow.set_tracking_uri(None)
        os.environ.pop("MLFLOW_TRACKING_URI", None)
        home = tmp_path / run
        assert (
            sluice(
                *tune_args(demo_slice, home, tmp_path / f"{run}.yaml", "--jobs", "1", "--trials", "3")
            ).code
            == 0
        )
        _, runs = runs_of(home)
        children = sorted(
            (r for r in runs if PARENT_TAG in r.data.tags), key=lambda r: r.data.tags[tags.TUNING_TRIAL]
        )
        found.append([(c.data.params, c.data.metrics["f1"]) for c in children])
    assert found[0] == found[1]


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"parameters": [{"name": "max_depth", "type": "int", "low": 12, "high": 3}]}, "empty range"),
        (
            {"parameters": [{"name": "max_dept", "type": "int", "low": 3, "high": 12}]},
            "unknown parameter 'max_dept'",
        ),
        ({"budget": {"trials": 0}}, "budget.trials: 0 is less than the minimum of 1"),
        ({"budget": {"trials": 2, "max_failed": 3}}, "budget.max_failed: 3 is more than budget.trials 2"),
        ({"candidate": "gradient_boosting"}, "candidate: 'gradient_boosting' is not a pipeline candidate"),
        ({"objective": {"metric": "f2", "direction": "maximize"}}, "objective.metric"),
        (
            {
                "parameters": [
                    {"name": "min_samples_leaf", "type": "int", "low": 0, "high": 8, "scale": "log"}
                ]
            },
            "a log scale needs low > 0",
        ),
    ],
)
def test_a_bad_search_space_is_one_line_naming_the_field(sluice, demo_slice, tmp_path, edit, message) -> None:
    doc = {**yaml.safe_load(SPACE.read_text()), **edit}
    space = tmp_path / "space.yaml"
    space.write_text(yaml.safe_dump(doc))
    done = sluice(*tune_args(demo_slice, tmp_path / "home", tmp_path / "out.yaml", space=space))
    assert done.code == 2
    assert len(done.err_lines) == 1 and message in done.err, done.err


def test_a_katib_trial_prints_the_collector_format_and_refuses_another_space(demo_slice, tmp_path) -> None:
    from ml.tuning.space import default_path, load

    space = load(default_path("credit-default"))
    args = [
        sys.executable,
        "-m",
        "ml.tuning.trial",
        "--model=credit-default",
        f"--space-sha256={space.sha256}",
        f"--data={demo_slice.current}",
        f"--contract={demo_slice.contract}",
        "--set=n_estimators=40",
        "--set=max_depth=4",
        "--set=min_samples_leaf=8",
        "--set=max_features=sqrt",
    ]
    env = {**os.environ, "PYTHONPATH": str(HERE.parents[1])}
    done = subprocess.run(args, capture_output=True, text=True, timeout=300, env=env, check=False)
    assert done.returncode == 0, done.stderr
    metrics = [KATIB_METRIC_LINE.findall(line) for line in done.stdout.splitlines()]
    assert len(metrics) == space.folds
    assert all(m[0][0] == "f1" and 0 < float(m[0][1]) < 1 for m in metrics)
    wrong = subprocess.run(
        [*args[:4], "--space-sha256=" + "0" * 64, *args[5:]],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert wrong.returncode == 2 and "render the Experiment again" in wrong.stderr and wrong.stdout == ""
