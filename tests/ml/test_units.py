"""Small pieces with sharp edges: progress parsing, run keys, splits, candidate parameters."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pandas as pd
import pytest

from ml.components.markers import MARKER
from ml.runners import runkey
from ml.runners.progress import ProgressTap
from ml.training.candidates import build_estimator, restore_integers
from ml.training.selection import selection_key
from ml.training.split import stratified_split
from sluice.errors import SluiceError

CYAN, GREEN, RED, RESET = "\033[96m", "\033[92m", "\033[91m", "\033[0m"


def _kfp_lines(task: str, marker: dict | None, status: str = "SUCCESS") -> list[str]:
    """What kfp 2.17.0's local runner prints around one task (colours included)."""
    colour = GREEN if status == "SUCCESS" else RED
    lines = [f"06:00:00.000 - INFO - Executing task {CYAN}'{task}'{RESET}\n", "    some streamed log\n"]
    if marker is not None:
        lines.append(f"    {MARKER} {json.dumps(marker)}\n")
    else:
        lines.append("    ValueError: boom\n")
    lines.append(
        f"06:00:01.000 - INFO - Task {CYAN}'{task}'{RESET} finished with status {colour}{status}{RESET}\n"
    )
    return lines


def test_progress_tap_prints_one_line_per_task_from_concurrent_threads():
    out, log = io.StringIO(), io.StringIO()
    tap = ProgressTap(log, out)

    def feed(task, candidate):
        for line in _kfp_lines(
            task, {"step": "train", "candidate": candidate, "fit_seconds": 0.5, "seconds": 1}
        ):
            for piece in (line[:7], line[7:]):  # partial writes, as print() may do
                tap.write(piece)

    threads = [
        threading.Thread(target=feed, args=("train-and-evaluate", name)) for name in ("lr", "rf", "dt")
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tap.write("INFO - Task select-best cache hit (key=abc); skipping execution.\n")
    for line in _kfp_lines("register-challenger", None, "FAILURE"):
        tap.write(line)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5
    assert sorted(line.split()[-4] for line in lines[:3]) == ["dt", "lr", "rf"]
    assert all(" train+evaluate " in line and " ok " in line for line in lines[:3])
    assert "select" in lines[3] and "cached" in lines[3]
    assert " error " in lines[4] and "ValueError: boom" in lines[4]  # broken, not refused
    assert [t.status for t in tap.failures()] == ["FAILURE"]
    assert "some streamed log" in log.getvalue()


def test_an_attempt_the_runner_retried_successfully_is_not_a_failure():
    """#14 break 2: `set_retry` runs a task again after a failed attempt; only the last one counts."""
    tap = ProgressTap(io.StringIO(), io.StringIO())
    for line in _kfp_lines("log-candidate", None, "FAILURE"):
        tap.write(line)
    tap.write("INFO - Task log-candidate failed (attempt 1/4). Retrying in 5.0s...\n")
    for line in _kfp_lines("log-candidate", {"step": "log", "run_id": "abc", "seconds": 1}):
        tap.write(line)
    for line in _kfp_lines("register-challenger", None, "FAILURE"):  # failed for good
        tap.write(line)
    assert [t.name for t in tap.failures()] == ["register-challenger"]
    assert tap.retried() == {"log-candidate": 1}


def _toy_packages(root, monkeypatch):
    """Two packages on sys.path: `toytrain.entry` imports `toygates.judge`; `toygates.lint` is unused."""
    (root / "toytrain").mkdir()
    (root / "toygates" / "__pycache__").mkdir(parents=True)
    (root / "toytrain" / "__init__.py").write_text("")
    (root / "toytrain" / "entry.py").write_text("def run():\n    from toygates import judge\n")
    (root / "toygates" / "__init__.py").write_text("")
    (root / "toygates" / "judge.py").write_text("x = 1\n")
    (root / "toygates" / "lint.py").write_text("RULES = 1  # delivery tooling, not training code\n")
    (root / "toygates" / "policy.yaml").write_text("limit: 1\n")
    monkeypatch.syspath_prepend(str(root))
    return {"packages": ("toytrain", "toygates"), "entry_points": ("toytrain.entry",)}


def test_code_fingerprint_follows_what_training_imports(tmp_path, monkeypatch):
    scope = _toy_packages(tmp_path, monkeypatch)
    assert set(runkey.training_files(**scope)) == {
        "toytrain/__init__.py",
        "toytrain/entry.py",
        "toygates/__init__.py",
        "toygates/judge.py",
        "toygates/policy.yaml",
    }
    before = runkey.code_fingerprint(**scope)
    (tmp_path / "toygates" / "__pycache__" / "judge.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "toygates" / "notes.txt").write_text("not code")
    (tmp_path / "toygates" / "lint.py").write_text("RULES = 2  # edited delivery tooling\n")
    assert runkey.code_fingerprint(**scope) == before
    (tmp_path / "toygates" / "policy.yaml").write_text("limit: 2\n")
    changed_data = runkey.code_fingerprint(**scope)
    assert changed_data != before
    (tmp_path / "toygates" / "judge.py").write_text("x = 2\n")
    assert runkey.code_fingerprint(**scope) not in (before, changed_data)


def test_training_code_leaves_delivery_out_and_counts_the_served_model():
    files = runkey.training_files()
    assert {"ml/components/train.py", "gates/model_gate.py", "ml/serving/app.py"} <= set(files)
    assert "gates/gate_policy/default.yaml" in files
    assert not [f for f in files if f.startswith(("sluice/cli/", "sluice/promotion/", "sluice/lint/"))]


def test_run_key_is_order_independent_and_sensitive_to_every_value():
    a = runkey.run_key({"data": "1", "params": {"seed": 1, "c": [1, 2]}})
    assert a == runkey.run_key({"params": {"c": [1, 2], "seed": 1}, "data": "1"})
    assert a != runkey.run_key({"data": "1", "params": {"seed": 2, "c": [1, 2]}})


def test_registry_check_without_a_cheap_way_says_unknown(tmp_path):
    assert runkey.registry_has_version("postgresql://x/y", "m", "1", "k") is None
    assert runkey.registry_has_version(f"sqlite:///{tmp_path / 'missing.db'}", "m", "1", "k") is False


def _frame(n=1000, positives=0.2, seed=0):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"x": rng.normal(size=n), "y": (rng.random(n) < positives).astype(float)})


def test_split_is_stratified_disjoint_and_seeded():
    frame = _frame()
    train, val, hold = stratified_split(frame, "y", seed=3, validation_fraction=0.2, holdout_fraction=0.2)
    assert len(train) + len(val) + len(hold) == len(frame)
    rate = frame["y"].mean()
    for part in (train, val, hold):
        assert part["y"].mean() == pytest.approx(rate, abs=0.01)
    assert set(train["x"]).isdisjoint(hold["x"]) and set(val["x"]).isdisjoint(hold["x"])
    again = stratified_split(frame, "y", seed=3, validation_fraction=0.2, holdout_fraction=0.2)
    assert again[2].equals(hold)
    other = stratified_split(frame, "y", seed=4, validation_fraction=0.2, holdout_fraction=0.2)
    assert not other[2].equals(hold)


def test_split_refuses_a_part_without_both_classes():
    with pytest.raises(SluiceError, match="fewer than two label classes"):
        stratified_split(
            _frame(n=12, positives=0.1, seed=1), "y", seed=0, validation_fraction=0.2, holdout_fraction=0.2
        )


def test_kfp_doubles_become_integers_again():
    assert restore_integers({"n_estimators": 80.0, "C": 1.0, "max_depth": None}) == {
        "n_estimators": 80,
        "C": 1.0,
        "max_depth": None,
    }
    forest = build_estimator("random_forest", {"n_estimators": 5.0, "max_depth": 3.0}, seed=1)
    assert forest.n_estimators == 5 and forest.random_state == 1
    with pytest.raises(SluiceError, match="unknown model_type"):
        build_estimator("svm", {}, seed=1)


def test_selection_prefers_f1_then_auc_then_name():
    cands = [
        {"name": "b", "metrics": {"f1": 0.6, "roc_auc": 0.8}},
        {"name": "a", "metrics": {"f1": 0.6, "roc_auc": 0.8}},
        {"name": "c", "metrics": {"f1": 0.6, "roc_auc": 0.9}},
        {"name": "d", "metrics": {"f1": 0.7, "roc_auc": 0.5}},
    ]
    assert [c["name"] for c in sorted(cands, key=selection_key)] == ["d", "c", "a", "b"]
