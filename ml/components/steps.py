"""What each pipeline step does, as plain functions of paths and values.

The KFP components in `ml.components.definitions` are one-line shims over these, so the logic is
importable, testable and identical whether a task runs under the local runner or in a pod of
the trainer image. Heavy libraries are imported inside each function: a step pays only for
what it uses (importing scikit-learn alone costs over a second per task here).

Each step prints one `::sluice::` marker line (JSON) with what it found; `sluice run` turns those
into its progress lines and summary, and on a cluster they are ordinary, greppable log lines.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from ml.digest import sha256_file
from ml.errors import SluiceError

MARKER = "::sluice::"
SPLITS = ("train", "validation", "holdout")
MODEL_FILENAME = "model.skops"
# Types skops must be told to trust when loading our models. Anything else found in a model
# is refused, so a tampered artifact cannot smuggle in arbitrary callables.
SKOPS_TRUSTED_TYPES = (
    "ml.training.features.normalize_frame",
    "numpy.dtype",
    "sklearn.tree._tree.Tree",
)


def in_kfp_task_process() -> bool:
    """True only inside `python -m kfp.dsl.executor_main` (a pipeline task), never in tests or the CLI."""
    main_spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    executor = getattr(main_spec, "name", "") == "kfp.dsl.executor_main"
    return executor and os.environ.get("_KFP_RUNTIME") == "true"


def skip_teardown_after_success() -> None:
    """End a successful task process with `os._exit(0)` instead of a full interpreter teardown.

    A task process lives for seconds, and once pandas, scikit-learn, skops and MLflow are
    loaded, Python's orderly shutdown (clearing thousands of modules) costs 0.3-1 s of it
    (measured, see benchmarks/bench_run.py). Registered when this module is first imported
    (the first thing every component does), so every exit handler registered later (MLflow's,
    temp-dir cleanups) still runs first; logging and the standard streams are flushed by hand.
    A task that raised goes through the normal exit with its non-zero status: the exception
    hook marks it before exit handlers run. The executor has written its output file (closed)
    before the interpreter starts exiting, so nothing the runner reads is lost.
    """
    if not in_kfp_task_process():
        return
    failed: list[bool] = []
    previous_hook = sys.excepthook

    def note_failure(*exc_info) -> None:
        failed.append(True)
        previous_hook(*exc_info)

    def exit_now() -> None:
        if failed:
            return
        import logging

        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with suppress(OSError, ValueError):
                stream.flush()
        os._exit(0)

    sys.excepthook = note_failure
    atexit.register(exit_now)


skip_teardown_after_success()


def emit(**fields: Any) -> None:
    """One machine-readable progress line on stdout (flushed: the runner streams it live)."""
    print(f"{MARKER} {json.dumps(fields, sort_keys=True, default=str)}", flush=True)


def process_age() -> float | None:
    """Seconds since this process started (Linux), so a benchmark can tell start-up from work."""
    try:
        with open("/proc/self/stat") as fh:
            start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])  # field 22: starttime
        with open("/proc/uptime") as fh:
            uptime = float(fh.read().split()[0])
        return round(uptime - start_ticks / os.sysconf("SC_CLK_TCK"), 3)
    except (OSError, ValueError, IndexError):
        return None


@contextmanager
def step(name: str, **fields: Any) -> Iterator[dict]:
    """Time a step and report it; a SluiceError becomes a one-line `error` the CLI can show."""
    started = time.perf_counter()
    report: dict[str, Any] = dict(fields)
    try:
        yield report
    except SluiceError as exc:
        emit(step=name, error=str(exc), seconds=round(time.perf_counter() - started, 3), **fields)
        raise
    emit(step=name, seconds=round(time.perf_counter() - started, 3), process_s=process_age(), **report)


def only_file(directory: str | Path, pattern: str = "*") -> Path:
    """The single file inside a directory-shaped artifact (its name keeps the original suffix)."""
    found = sorted(p for p in Path(directory).glob(pattern) if p.is_file())
    if len(found) != 1:
        raise SluiceError(f"expected one {pattern} file in artifact {directory}, found {len(found)}")
    return found[0]


# ---------------------------------------------------------------------------------------- load
def load_inputs(sources: dict[str, tuple[str, str]], outputs: dict[str, str]) -> dict[str, dict[str, str]]:
    """Copy each source file into its artifact directory after checking its sha256.

    The sha256 was computed by whoever started the run and is part of the cache key; checking it
    here means a file edited after the run started fails loudly instead of training on bytes
    that no longer match the recorded identity.
    """
    with step("load") as report:
        meta: dict[str, dict[str, str]] = {}
        for role, (uri, expected) in sources.items():
            src = Path(uri.removeprefix("file://"))
            if not src.is_file():
                raise SluiceError(f"{role} file not found: {src}")
            actual = sha256_file(src)
            if expected and actual != expected:
                raise SluiceError(f"{role} file {src} changed since the run started (sha256 {actual[:12]}…)")
            out_dir = Path(outputs[role])
            out_dir.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out_dir / src.name)
            meta[role] = {"sha256": actual, "source": str(src), "filename": src.name}
        report["files"] = {role: m["filename"] for role, m in meta.items()}
    return meta


# ----------------------------------------------------------------------------------- data gate
def reason_line(evidence: dict) -> str:
    """The one sentence that says why a gate failed (or that it passed)."""
    failed = [c for c in evidence.get("checks", []) if not c.get("passed", True)]
    if failed:
        first = failed[0]
        more = f" (+{len(failed) - 1} more failed check(s))" if len(failed) > 1 else ""
        return f"{first.get('name')}: {first.get('reason')}{more}"
    return evidence.get("summary") or ("passed" if evidence.get("passed") else "failed")


def data_gate(
    contract_dir: str,
    reference_dir: str,
    current_dir: str,
    policy_uri: str,
    out_dir: str,
    retrain_only_on_drift: bool = False,
) -> tuple[bool, bool, str]:
    """Run the data gate; returns (passed, train, reason).

    `train` is what the pipeline branches on: the gate passed, and, when retraining is wanted
    only on drift, the gate found some (else this is a no-op run that still leaves evidence).
    """
    from gates.data_gate import run_data_gate

    with step("data-gate") as report:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        evidence = run_data_gate(
            only_file(contract_dir),
            only_file(reference_dir),
            only_file(current_dir),
            policy_uri or None,
            out_dir=out_dir,
        )
        passed = bool(evidence["passed"])
        drift = bool(evidence.get("drift_detected", True))
        train = passed and (drift or not retrain_only_on_drift)
        reason = reason_line(evidence)
        report.update(
            passed=passed,
            train=train,
            drift_detected=drift,
            decision=evidence.get("decision"),
            reason=reason,
            evidence=str(evidence_json(out_dir)),
            checks=len(evidence.get("checks", [])),
        )
    return passed, train, reason


# --------------------------------------------------------------------------------------- split
def split(
    contract_dir: str,
    current_dir: str,
    seed: int,
    validation_fraction: float,
    holdout_fraction: float,
    train_dir: str,
    validation_dir: str,
    holdout_dir: str,
) -> None:
    from ml.data.contract import load_contract, load_snapshot
    from ml.training.split import stratified_split

    with step("split") as report:
        contract = load_contract(only_file(contract_dir))
        frame, problems, _ = load_snapshot(only_file(current_dir), contract)
        if problems:  # the data gate passed, so this is a bug or a policy that ignores the contract
            raise SluiceError(f"data breaks its contract after the data gate passed: {problems[0]}")
        frame = frame[frame[contract.label].notna()]
        parts = stratified_split(
            frame,
            contract.label,
            seed=seed,
            validation_fraction=validation_fraction,
            holdout_fraction=holdout_fraction,
        )
        for name, part, out in zip(SPLITS, parts, (train_dir, validation_dir, holdout_dir), strict=True):
            Path(out).mkdir(parents=True, exist_ok=True)
            part.to_parquet(Path(out) / f"{name}.parquet", index=False)
        report["rows"] = {"train": len(parts[0]), "validation": len(parts[1]), "holdout": len(parts[2])}


# --------------------------------------------------------------------------------------- train
def save_model(model, out_dir: str | Path) -> Path:
    import skops.io as sio

    payload = sio.dumps(model)
    untrusted = set(sio.get_untrusted_types(data=payload)) - set(SKOPS_TRUSTED_TYPES)
    if untrusted:
        raise SluiceError(f"model holds types outside the trusted list: {', '.join(sorted(untrusted))}")
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    path = Path(out_dir) / MODEL_FILENAME
    path.write_bytes(payload)
    return path


def load_model(model_dir: str | Path):
    import skops.io as sio

    return sio.load(Path(model_dir) / MODEL_FILENAME, trusted=list(SKOPS_TRUSTED_TYPES))


def train_and_evaluate(
    contract_dir: str,
    train_dir: str,
    validation_dir: str,
    candidate: dict,
    seed: int,
    model_dir: str,
) -> dict:
    """Fit one candidate on the train split, save it, and score it on the validation split.

    The fitted object is scored in memory; the saved bytes are what `select` and `log` read,
    and `log` scores the winner again from them on the holdout.
    """
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from ml.data.contract import load_contract
    from ml.training.candidates import build_estimator, validate_candidates
    from ml.training.evaluate import binary_target, score
    from ml.training.features import build_preprocessor

    with step("train", candidate=candidate["name"]) as report:
        validate_candidates([candidate])
        contract = load_contract(only_file(contract_dir))
        frame = pd.read_parquet(only_file(train_dir, "*.parquet"))
        model = Pipeline(
            [
                ("prepare", build_preprocessor(contract)),
                ("model", build_estimator(candidate["model_type"], candidate["params"], seed)),
            ]
        )
        fit_started = time.perf_counter()
        model.fit(frame, binary_target(frame[contract.label], contract.positive_class))
        report["fit_seconds"] = round(time.perf_counter() - fit_started, 3)
        save_model(model, model_dir)
        validation = pd.read_parquet(only_file(validation_dir, "*.parquet"))
        metrics = score(model, validation, binary_target(validation[contract.label], contract.positive_class))
        report["metrics"] = {k: round(metrics[k], 4) for k in ("accuracy", "f1", "roc_auc")}
    return {
        "name": candidate["name"],
        "model_type": candidate["model_type"],
        "params": candidate["params"],
        "metrics": metrics,
    }


# -------------------------------------------------------------------------------------- select
# Simplest first. Among candidates whose validation F1 is within the tolerance of the best, the
# simplest wins: a 0.001 F1 edge on a few thousand rows is noise (its standard error is about
# 0.015), while a forest costs more to serve, explain and keep than a logistic regression.
COMPLEXITY = {"logistic_regression": 0, "decision_tree": 1, "random_forest": 2}


def selection_key(summary: dict) -> tuple:
    """Best F1 (what the model gate judges), then ROC AUC, then name: no ties left to chance."""
    m = summary["metrics"]
    return (-m["f1"], -m["roc_auc"], summary["name"])


def choose(candidates: list[dict], tolerance: float) -> dict:
    """The simplest candidate within `tolerance` of the best F1 (then the selection key)."""
    best_f1 = max(c["metrics"]["f1"] for c in candidates)
    eligible = [c for c in candidates if c["metrics"]["f1"] >= best_f1 - tolerance]
    return min(eligible, key=lambda c: (COMPLEXITY.get(c["model_type"], len(COMPLEXITY)), *selection_key(c)))


def select(
    summaries: list[str], model_dirs: list[tuple[str, str]], best_dir: str, tolerance: float = 0.0
) -> tuple[dict, list[dict]]:
    """Pick the winner; `model_dirs` pairs each model artifact's candidate name with its path."""
    with step("select") as report:
        parsed = sorted((json.loads(s) for s in summaries), key=selection_key)
        if not parsed:
            raise SluiceError("no candidate produced a model")
        best = choose(parsed, tolerance)
        paths = dict(model_dirs)
        if best["name"] not in paths:
            raise SluiceError(f"model artifact for candidate {best['name']!r} is missing")
        shutil.copytree(paths[best["name"]], best_dir, dirs_exist_ok=True)
        report.update(
            best=best["name"],
            metrics={k: round(best["metrics"][k], 4) for k in ("accuracy", "f1", "roc_auc")},
        )
    return best, parsed


# ------------------------------------------------------------------------------------- mlflow
def _mlflow(tracking_uri: str):
    import logging
    import os

    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    if not tracking_uri:
        raise SluiceError("no MLflow tracking URI given to the pipeline (parameter tracking_uri)")
    _wait_for_store_init(tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    return mlflow


def _wait_for_store_init(tracking_uri: str) -> None:
    """If `sluice run` is still creating this SQLite store in the background, wait for it."""
    if not tracking_uri.startswith("sqlite:///"):
        return
    import fcntl

    db = Path(tracking_uri.removeprefix("sqlite:///"))
    lock_path = db.with_name(db.name + ".init.lock")
    if lock_path.exists():
        with lock_path.open("a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)


def _experiment_id(mlflow, name: str, artifact_root: str) -> str:
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_root or None)
    except Exception:  # created concurrently by another run: use that one
        experiment = mlflow.get_experiment_by_name(name)
        if experiment is None:
            raise
        return experiment.experiment_id


def _find_logged_run(client, experiment_id: str, run_key: str):
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`sluice.run_key` = '{run_key}' and tags.`sluice.model_logged` = 'true'",
        max_results=1,
        order_by=["attributes.start_time ASC"],
    )
    return runs[0] if runs else None


def log_training_run(
    *,
    tracking_uri: str,
    artifact_root: str,
    model_name: str,
    run_key: str,
    best_dir: str,
    holdout_dir: str,
    contract_dir: str,
    data_evidence_dir: str,
    best: dict,
    candidates: list[dict],
    seed: int,
    identity: dict[str, str],
) -> tuple[str, str, dict]:
    """Log the winner to MLflow as a run (model, params, metrics, holdout, contract, candidates).

    Registration comes later and only if the model gate passes; the gate needs a model URI to
    serve, so the model exists as a run artifact first. The same run key reuses the same run.
    """
    with step("log", candidate=best["name"]) as report:
        report["candidates"] = [
            {
                "name": c["name"],
                "model_type": c["model_type"],
                "metrics": {k: round(c["metrics"][k], 4) for k in ("accuracy", "f1", "roc_auc")},
            }
            for c in candidates
        ]
        mlflow = _mlflow(tracking_uri)
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        experiment_id = _experiment_id(mlflow, model_name, artifact_root)
        existing = _find_logged_run(client, experiment_id, run_key) if run_key else None
        if existing is not None:
            holdout_metrics = {
                k.removeprefix("holdout_"): v
                for k, v in existing.data.metrics.items()
                if k.startswith("holdout_")
            }
            report.update(run_id=existing.info.run_id, reused=True, holdout=holdout_metrics)
            return existing.info.run_id, f"runs:/{existing.info.run_id}/model", holdout_metrics

        import mlflow.sklearn
        import pandas as pd
        from mlflow.models import infer_signature

        from ml.data.contract import load_contract
        from ml.training.evaluate import binary_target, score

        contract = load_contract(only_file(contract_dir))
        model = load_model(best_dir)
        holdout_path = only_file(holdout_dir, "*.parquet")
        holdout = pd.read_parquet(holdout_path)
        holdout_metrics = score(
            model, holdout, binary_target(holdout[contract.label], contract.positive_class)
        )
        features = [c.name for c in contract.features]
        sample = holdout[features].head(100)
        tags = {
            "sluice.run_key": run_key,
            "sluice.model_name": model_name,
            "sluice.model_type": best["model_type"],
            **{f"sluice.{k}": v for k, v in identity.items()},
        }
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=f"{model_name}-{best['name']}", tags=tags
        ) as run:
            mlflow.log_params(
                {
                    **{f"model.{k}": v for k, v in best["params"].items()},
                    "candidate": best["name"],
                    "model_type": best["model_type"],
                    "seed": seed,
                }
            )
            metrics = {f"validation_{k}": best["metrics"][k] for k in ("accuracy", "f1", "roc_auc")}
            metrics.update({f"holdout_{k}": holdout_metrics[k] for k in ("accuracy", "f1", "roc_auc")})
            for cand in candidates:
                metrics.update(
                    {
                        f"candidate.{cand['name']}.{k}": cand["metrics"][k]
                        for k in ("accuracy", "f1", "roc_auc")
                    }
                )
            mlflow.log_metrics(metrics)
            # skops, not pickle: loading a registry model must not run arbitrary code. The few
            # non-sklearn types our pipeline holds are trusted explicitly (SKOPS_TRUSTED_TYPES).
            mlflow.sklearn.log_model(
                model,
                name="model",
                serialization_format="skops",
                skops_trusted_types=list(SKOPS_TRUSTED_TYPES),
                signature=infer_signature(sample, model.predict(sample)),
                # Explicit requirements skip MLflow's slow inference (it imports the model in a subprocess).
                pip_requirements=_pip_requirements(),
            )
            mlflow.log_artifact(str(holdout_path), artifact_path="data")
            # The agreed name (`sluice gate model` reads it back), whatever the user's file is called.
            with tempfile.TemporaryDirectory(prefix="sluice-contract-") as staging:
                staged = Path(staging) / "contract.yaml"
                shutil.copyfile(contract.path, staged)
                mlflow.log_artifact(str(staged), artifact_path="data")
            mlflow.log_dict({"selected": best["name"], "candidates": candidates}, "candidates.json")
            # Under evidence/data/: evidence/ itself holds the model gate's files, the ones a
            # promotion verifies and links to.
            for path in sorted(Path(data_evidence_dir).glob("*")):
                if path.is_file():
                    mlflow.log_artifact(str(path), artifact_path="evidence/data")
            mlflow.set_tag("sluice.model_logged", "true")  # last: marks the run complete for reuse
        report.update(
            run_id=run.info.run_id,
            reused=False,
            holdout={k: round(holdout_metrics[k], 4) for k in ("accuracy", "f1", "roc_auc")},
        )
    return run.info.run_id, f"runs:/{run.info.run_id}/model", holdout_metrics


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    # Not "sluice" itself: that name on a public index is not ours (dependency confusion). The
    # model's one custom function lives in the `ml` package, which the serving image installs.
    return [f"{dist}=={version(dist)}" for dist in ("scikit-learn", "skops", "pandas", "numpy", "pyarrow")]


# ---------------------------------------------------------------------------------- model gate
def model_gate(
    *,
    model_uri: str,
    holdout_dir: str,
    contract_dir: str,
    policy_uri: str,
    tracking_uri: str,
    model_name: str,
    subject: dict,
    out_dir: str,
) -> tuple[bool, str]:
    import pandas as pd

    from ml.data.contract import load_contract

    with step("model-gate") as report:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        _mlflow(tracking_uri)
        from gates.model_gate import run_model_gate

        holdout_path = only_file(holdout_dir, "*.parquet")
        subject = {**subject, "holdout_sha256": sha256_file(holdout_path)}
        evidence = run_model_gate(
            model_uri,
            pd.read_parquet(holdout_path),
            load_contract(only_file(contract_dir)),
            policy_uri or None,
            tracking_uri=tracking_uri,
            model_name=model_name,
            champion_alias="champion",
            subject=subject,
            out_dir=out_dir,
        )
        passed = bool(evidence["passed"])
        reason = reason_line(evidence)
        report.update(
            passed=passed,
            reason=reason,
            evidence=str(evidence_json(out_dir)),
            checks=[
                {"name": c.get("name"), "passed": c.get("passed"), "observed": c.get("observed")}
                for c in evidence.get("checks", [])
            ],
        )
    return passed, reason


def evidence_json(evidence_dir: str | Path) -> Path:
    return only_file(evidence_dir, "*.json")


# ------------------------------------------------------------------------------------ register
def _versions_of_run(client, model_name: str, run_id: str) -> list:
    try:
        return list(client.search_model_versions(f"name='{model_name}' and run_id='{run_id}'"))
    except Exception as exc:  # no registered model yet
        if "RESOURCE_DOES_NOT_EXIST" in str(exc):
            return []
        raise


def register_challenger(
    *,
    tracking_uri: str,
    model_name: str,
    run_id: str,
    run_key: str,
    evidence_dir: str,
    pipeline_run_id: str,
    best: dict,
    holdout_metrics: dict,
    identity: dict[str, str],
    split_params: dict,
) -> tuple[str, bool]:
    """Create a model version from the gated run, tagged and aliased `challenger`; idempotent.

    The same run key (data, contract, code, parameters) always maps to the same run, and a run
    registers at most one version: a retry or an unchanged re-run returns that version instead
    of creating another. Returns (version, reused).
    """
    with step("register") as report:
        mlflow = _mlflow(tracking_uri)
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        evidence_path = evidence_json(evidence_dir)
        evidence_sha = sha256_file(evidence_path)
        for mv in _versions_of_run(client, model_name, run_id):
            if mv.tags.get("sluice.run_key") == run_key:
                if mv.tags.get("sluice.registration_complete") != "true":  # a retry after a partial attempt
                    client.set_registered_model_alias(model_name, "challenger", mv.version)
                    client.set_model_version_tag(
                        model_name, mv.version, "sluice.registration_complete", "true"
                    )
                _mark_pipeline_run(
                    client.set_model_version_tag, (model_name, mv.version), pipeline_run_id, "reused"
                )
                report.update(version=str(mv.version), reused=True)
                return str(mv.version), True

        client.log_artifacts(run_id, evidence_dir, artifact_path="evidence")
        params = {
            "candidate": best["name"],
            "model_type": best["model_type"],
            "params": best["params"],
            **split_params,
        }
        tags = {
            "sluice.run_key": run_key,
            "sluice.data_sha256": identity["data_sha256"],
            "sluice.reference_data_sha256": identity["reference_data_sha256"],
            "sluice.contract_sha256": identity["contract_sha256"],
            "sluice.git_commit": identity["git_commit"],
            "sluice.code_version": identity["code_version"],
            "sluice.params": json.dumps(params, sort_keys=True),
            "sluice.pipeline_run_id": pipeline_run_id,
            "sluice.model_type": best["model_type"],
            "sluice.evidence_sha256": evidence_sha,
            "sluice.evidence_passed": "true",
            "sluice.evidence_artifact": f"evidence/{evidence_path.name}",
            **{f"sluice.metric.{k}": repr(float(holdout_metrics[k])) for k in ("accuracy", "f1", "roc_auc")},
        }
        mv = mlflow.register_model(f"runs:/{run_id}/model", model_name, tags=tags)
        client.set_registered_model_alias(model_name, "challenger", mv.version)
        client.set_model_version_tag(model_name, mv.version, "sluice.registration_complete", "true")
        client.set_tag(run_id, "sluice.evidence_passed", "true")
        client.set_tag(run_id, "sluice.evidence_sha256", evidence_sha)
        report.update(version=str(mv.version), reused=False)
    return str(mv.version), False


def record_rejection(*, tracking_uri: str, run_id: str, evidence_dir: str, pipeline_run_id: str = "") -> None:
    """A candidate the model gate refused keeps its evidence on its run; no version is created.

    The run is marked with the pipeline run and the gate's reason, so `sluice submit --wait`
    can say why a finished pipeline run registered nothing.
    """
    with step("record-rejection") as report:
        _mlflow(tracking_uri)
        from mlflow.tracking import MlflowClient

        client = MlflowClient()
        evidence_path = evidence_json(evidence_dir)
        client.log_artifacts(run_id, evidence_dir, artifact_path="evidence")
        client.set_tag(run_id, "sluice.evidence_passed", "false")
        client.set_tag(run_id, "sluice.evidence_sha256", sha256_file(evidence_path))
        reason = reason_line(json.loads(evidence_path.read_text()))
        client.set_tag(run_id, "sluice.evidence_reason", reason[:500])
        _mark_pipeline_run(client.set_tag, (run_id,), pipeline_run_id, "rejected")
        report["run_id"] = run_id


# A pipeline run that reuses a version (same run key) or is refused by the model gate leaves
# `sluice.pipeline_run.<id>` = reused | rejected behind, next to the creator's
# `sluice.pipeline_run_id`: that is how `sluice submit --wait` finds what *its* run did.
PIPELINE_RUN_TAG_PREFIX = "sluice.pipeline_run."
_TAGGABLE_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


def pipeline_run_tag(pipeline_run_id: str) -> str | None:
    """The per-run tag key, or None when the id cannot be a tag key (e.g. an unresolved placeholder)."""
    if not _TAGGABLE_RUN_ID.match(pipeline_run_id or ""):
        return None
    return PIPELINE_RUN_TAG_PREFIX + pipeline_run_id


def _mark_pipeline_run(set_tag, target: tuple, pipeline_run_id: str, what: str) -> None:
    key = pipeline_run_tag(pipeline_run_id)
    if key is not None:
        set_tag(*target, key, what)
