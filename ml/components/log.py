"""Log step: the winning candidate becomes an MLflow run (model, metrics, holdout, contract).

Registration comes later and only if the model gate passes; the gate needs a model URI to serve,
so the model exists as a run artifact first. The same run key reuses the same run, so a retried
or repeated step never logs a second copy of the model. The data-gate attempt that let this
training happen is kept on the run either way (`evidence/<attempt>/`, beside earlier attempts).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from gates.evidence.history import record_attempt
from ml.components.artifacts import evidence_json, only_file
from ml.components.markers import step
from ml.registry.client import connect, experiment_id
from ml.training.persist import SKOPS_TRUSTED_TYPES, load_model
from sluice import tags
from sluice.environment import environment_tags

SCORES = ("accuracy", "f1", "roc_auc")
# The model's own library versions, pinned in its requirements. Not "sluice" itself: that name on
# a public index is not ours (dependency confusion); the serving image installs the `ml` package.
MODEL_REQUIREMENTS = ("scikit-learn", "skops", "pandas", "numpy", "pyarrow")


def _rounded(metrics: dict[str, float]) -> dict[str, float]:
    return {k: round(metrics[k], 4) for k in SCORES}


def find_logged_run(client: Any, experiment: str, run_key: str) -> Any | None:
    runs = client.search_runs(
        [experiment],
        filter_string=f"tags.`{tags.RUN_KEY}` = '{run_key}' and tags.`{tags.MODEL_LOGGED}` = 'true'",
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
    """Log the winner; returns (run id, model URI, holdout metrics)."""
    with step("log", candidate=best["name"]) as report:
        report["candidates"] = [
            {"name": c["name"], "model_type": c["model_type"], "metrics": _rounded(c["metrics"])}
            for c in candidates
        ]
        mlflow = connect(tracking_uri)
        experiment = experiment_id(mlflow, model_name, artifact_root)
        existing = find_logged_run(mlflow.MlflowClient(), experiment, run_key) if run_key else None
        if existing is not None:
            run_id = existing.info.run_id
            holdout = {
                k.removeprefix("holdout_"): v
                for k, v in existing.data.metrics.items()
                if k.startswith("holdout_")
            }
            attempt = record_attempt(mlflow.MlflowClient(), run_id, evidence_json(data_evidence_dir))
            report.update(run_id=run_id, reused=True, holdout=holdout, data_attempt=attempt.attempt)
            return run_id, f"runs:/{run_id}/model", holdout
        run_tags = {
            tags.RUN_KEY: run_key,
            tags.MODEL_NAME: model_name,
            tags.MODEL_TYPE: best["model_type"],
            **tags.identity_tags(identity),
            **environment_tags(),  # the lock and trainer image this step runs in, when known
        }
        run_id, holdout = _log_new_run(
            mlflow, experiment, run_tags, best, candidates, seed, best_dir, holdout_dir, contract_dir,
            data_evidence_dir,
        )
        report.update(run_id=run_id, reused=False, holdout=_rounded(holdout))
    return run_id, f"runs:/{run_id}/model", holdout


def _log_new_run(
    mlflow, experiment, run_tags, best, candidates, seed, best_dir, holdout_dir, contract_dir, evidence_dir
) -> tuple[str, dict]:
    import pandas as pd

    from ml.data.contract import load_contract
    from ml.training.evaluate import binary_target, score

    contract = load_contract(only_file(contract_dir))
    model = load_model(best_dir)
    holdout_path = only_file(holdout_dir, "*.parquet")
    holdout = pd.read_parquet(holdout_path)
    holdout_metrics = score(model, holdout, binary_target(holdout[contract.label], contract.positive_class))
    name = run_tags[tags.MODEL_NAME]
    with mlflow.start_run(experiment_id=experiment, run_name=f"{name}-{best['name']}", tags=run_tags) as run:
        mlflow.log_params(
            {
                **{f"model.{k}": v for k, v in best["params"].items()},
                "candidate": best["name"],
                "model_type": best["model_type"],
                "seed": seed,
            }
        )
        mlflow.log_metrics(_run_metrics(best, holdout_metrics, candidates))
        sample = holdout[[c.name for c in contract.features]].head(100)
        _log_model(mlflow, model, sample)
        mlflow.log_artifact(str(holdout_path), artifact_path="data")
        _log_contract(mlflow, contract.path)
        mlflow.log_dict({"selected": best["name"], "candidates": candidates}, "candidates.json")
        # The data gate's attempt, under evidence/<attempt>/ like every gate attempt on this run.
        record_attempt(mlflow.MlflowClient(), run.info.run_id, evidence_json(evidence_dir))
        mlflow.set_tag(tags.MODEL_LOGGED, "true")  # last: marks the run complete for reuse
    return run.info.run_id, holdout_metrics


def _run_metrics(best: dict, holdout: dict, candidates: list[dict]) -> dict[str, float]:
    metrics = {f"validation_{k}": best["metrics"][k] for k in SCORES}
    metrics.update({f"holdout_{k}": holdout[k] for k in SCORES})
    for cand in candidates:
        metrics.update({f"candidate.{cand['name']}.{k}": cand["metrics"][k] for k in SCORES})
    return metrics


def _log_model(mlflow, model, sample) -> None:
    """The sklearn model plus its ONNX flavor (what the serving image runs), in one logged model.

    A model that cannot be exported is still logged (sklearn flavor only, so the run is complete
    and inspectable) and the run is tagged with the reason; the model gate then refuses it with
    that reason. There is no slower fallback path that the gate would not have measured.
    """
    from mlflow.models import infer_signature

    from ml.serving.export import log_model
    from ml.serving.signature import ExportError

    options = {
        "serialization_format": "skops",
        "skops_trusted_types": list(SKOPS_TRUSTED_TYPES),
        "signature": infer_signature(sample, model.predict(sample)),
        # Explicit requirements skip MLflow's slow inference (it imports the model in a subprocess).
        "pip_requirements": model_requirements(),
    }
    try:
        log_model(model, name="model", **options)
    except ExportError as exc:
        import mlflow.sklearn

        mlflow.sklearn.log_model(model, name="model", **options)
        mlflow.set_tag(tags.SERVING_EXPORT_ERROR, str(exc))


def _log_contract(mlflow, contract_path: Path) -> None:
    """Logged as data/contract.yaml whatever the user's file is called (`sluice gate model` reads it)."""
    with tempfile.TemporaryDirectory(prefix="sluice-contract-") as staging:
        staged = Path(staging) / "contract.yaml"
        shutil.copyfile(contract_path, staged)
        mlflow.log_artifact(str(staged), artifact_path="data")


def model_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"{dist}=={version(dist)}" for dist in MODEL_REQUIREMENTS]
