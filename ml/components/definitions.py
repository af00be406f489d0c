"""The typed KFP v2 components of the training pipeline.

Each component is a thin shim: its body imports its step function from the installed package
(`ml.components.load`, `.gating`, `.data_record`, `.split`, `.train`, `.select`, `.log`,
`.register`) as
`run_step` and calls it. That keeps the compiled IR small and stable, and it means the trainer
image (which installs this project) and the local runner run the same code. Components are
built by `make_components(base_image)` because the image is chosen at compile time.

No `from __future__ import annotations` here: KFP reads the real annotation objects.
"""

from types import SimpleNamespace
from typing import Any, NamedTuple

from kfp import dsl
from kfp.dsl import ClassificationMetrics, Dataset, Input, Metrics, Model, Output

Artifact = dsl.Artifact


def load_snapshot(
    data_uri: str,
    reference_uri: str,
    contract_uri: str,
    data_sha256: str,
    reference_sha256: str,
    contract_sha256: str,
    code_version: str,
    current: Output[Dataset],
    reference: Output[Dataset],
    contract: Output[Artifact],
):
    """Bring the snapshot, its reference and its contract in as artifacts, checked by sha256."""
    from ml.components.load import load_inputs as run_step

    meta = run_step(
        {
            "current": (data_uri, data_sha256),
            "reference": (reference_uri, reference_sha256),
            "contract": (contract_uri, contract_sha256),
        },
        {"current": current.path, "reference": reference.path, "contract": contract.path},
    )
    current.metadata.update(meta["current"])
    reference.metadata.update(meta["reference"])
    contract.metadata.update(meta["contract"])


def data_gate(
    current: Input[Dataset],
    reference: Input[Dataset],
    contract: Input[Artifact],
    policy_uri: str,
    retrain_only_on_drift: bool,
    evidence: Output[Artifact],
) -> bool:
    """Contract, volume, nulls, labels, freshness and drift; returns whether to train.

    False when the gate failed, or when it passed without drift and retraining is wanted only on
    drift (a no-op run). One bool `Output` on purpose: the local runner (kfp 2.17.0) resolves a
    condition on a component's single `Output` but not on a named output, and a condition it
    cannot resolve is silently false. The verdict and reason travel in the evidence artifact.
    """
    from ml.components.gating import data_gate as run_step

    passed, train, reason = run_step(
        contract.path, reference.path, current.path, policy_uri, evidence.path, retrain_only_on_drift
    )
    evidence.metadata.update({"passed": passed, "train": train, "reason": reason})
    return train


def split_snapshot(
    current: Input[Dataset],
    contract: Input[Artifact],
    seed: int,
    validation_fraction: float,
    holdout_fraction: float,
    code_version: str,
    train: Output[Dataset],
    validation: Output[Dataset],
    holdout: Output[Dataset],
):
    """Seeded stratified split: train for fitting, validation for selection, holdout for the gate."""
    from ml.components.split import split as run_step

    run_step(
        contract.path,
        current.path,
        seed,
        validation_fraction,
        holdout_fraction,
        train.path,
        validation.path,
        holdout.path,
    )


def train_and_evaluate(
    train: Input[Dataset],
    validation: Input[Dataset],
    contract: Input[Artifact],
    candidate: dict,
    seed: int,
    code_version: str,
    model: Output[Model],
    metrics: Output[Metrics],
    confusion: Output[ClassificationMetrics],
) -> str:
    """Fit one candidate (preprocessing included) and score it on the validation split.

    One task, not two: a task process spends longer importing pandas, scikit-learn and skops
    than fitting, so a separate evaluate task doubled the start-up cost of every candidate.
    The outputs stay typed: the model, its metrics and its confusion matrix.
    """
    import json

    from ml.components.train import train_and_evaluate as run_step

    summary = run_step(
        contract.path, train.path, validation.path, candidate, seed, model.path
    )
    model.metadata.update({"candidate": candidate["name"], "model_type": candidate["model_type"]})
    for name in ("accuracy", "f1", "roc_auc", "precision", "recall"):
        metrics.log_metric(name, summary["metrics"][name])
    confusion.log_confusion_matrix(["negative", "positive"], summary["metrics"]["confusion_matrix"])
    # KFP keeps metrics in artifact metadata and writes no file; the local cache treats an
    # artifact whose file is missing as a miss, so write the numbers down as well.
    for artifact in (metrics, confusion):
        with open(artifact.path, "w") as fh:
            json.dump(artifact.metadata, fh, sort_keys=True)
    return json.dumps(summary, sort_keys=True)


def select_best(
    models: Input[list[Model]],
    summaries: list,
    selection_tolerance: float,
    code_version: str,
    best_model: Output[Model],
) -> NamedTuple("Selection", best=str, candidates=str):
    """The winner by validation F1; within `selection_tolerance` of the best, the simplest model."""
    import json
    from collections import namedtuple

    from ml.components.select import select as run_step

    best, ranked = run_step(
        summaries,
        [(m.metadata["candidate"], m.path) for m in models],
        best_model.path,
        selection_tolerance,
    )
    best_model.metadata.update({"candidate": best["name"], "model_type": best["model_type"]})
    return namedtuple("Selection", ["best", "candidates"])(
        json.dumps(best, sort_keys=True), json.dumps(ranked, sort_keys=True)
    )


def log_candidate(
    best_model: Input[Model],
    holdout: Input[Dataset],
    contract: Input[Artifact],
    data_evidence: Input[Artifact],
    best: str,
    candidates: str,
    tracking_uri: str,
    artifact_root: str,
    model_name: str,
    run_key: str,
    seed: int,
    data_sha256: str,
    reference_sha256: str,
    contract_sha256: str,
    code_commit: str,
    code_version: str,
) -> NamedTuple("LoggedRun", run_id=str, model_uri=str, holdout_metrics=str):
    """Log the winner as an MLflow run (model, holdout, contract, data evidence); no version yet."""
    import json
    from collections import namedtuple

    from ml.components.log import log_training_run as run_step

    run_id, model_uri, holdout_metrics = run_step(
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        model_name=model_name,
        run_key=run_key,
        best_dir=best_model.path,
        holdout_dir=holdout.path,
        contract_dir=contract.path,
        data_evidence_dir=data_evidence.path,
        best=json.loads(best),
        candidates=json.loads(candidates),
        seed=seed,
        identity={
            "data_sha256": data_sha256,
            "reference_sha256": reference_sha256,
            "contract_sha256": contract_sha256,
            "code_commit": code_commit,
            "code_version": code_version,
        },
    )
    metrics = {k: holdout_metrics[k] for k in ("accuracy", "f1", "roc_auc")}
    return namedtuple("LoggedRun", ["run_id", "model_uri", "holdout_metrics"])(
        run_id, model_uri, json.dumps(metrics, sort_keys=True)
    )


def model_gate(
    model_uri: str,
    holdout: Input[Dataset],
    contract: Input[Artifact],
    policy_uri: str,
    tracking_uri: str,
    model_name: str,
    data_sha256: str,
    reference_sha256: str,
    contract_sha256: str,
    code_commit: str,
    evidence: Output[Artifact],
) -> bool:
    """Quality, regression vs champion, served p99 latency and fairness on the holdout."""
    from ml.components.gating import model_gate as run_step

    passed, reason = run_step(
        model_uri=model_uri,
        holdout_dir=holdout.path,
        contract_dir=contract.path,
        policy_uri=policy_uri,
        tracking_uri=tracking_uri,
        model_name=model_name,
        out_dir=evidence.path,
        subject={
            "model": model_name,
            "model_uri": model_uri,
            "data_sha256": data_sha256,
            "reference_sha256": reference_sha256,
            "contract_sha256": contract_sha256,
            "code_commit": code_commit,
        },
    )
    evidence.metadata.update({"passed": passed, "reason": reason})
    return passed


def register_challenger(
    run_id: str,
    evidence: Input[Artifact],
    best: str,
    holdout_metrics: str,
    tracking_uri: str,
    model_name: str,
    run_key: str,
    pipeline_run_id: str,
    seed: int,
    validation_fraction: float,
    holdout_fraction: float,
    data_sha256: str,
    reference_sha256: str,
    contract_sha256: str,
    code_commit: str,
    code_version: str,
) -> str:
    """New model version from the gated run, alias `challenger`, evidence attached; idempotent."""
    import json

    from ml.components.register import register_challenger as run_step

    version, _ = run_step(
        tracking_uri=tracking_uri,
        model_name=model_name,
        run_id=run_id,
        run_key=run_key,
        evidence_dir=evidence.path,
        pipeline_run_id=pipeline_run_id,
        best=json.loads(best),
        holdout_metrics=json.loads(holdout_metrics),
        identity={
            "data_sha256": data_sha256,
            "reference_sha256": reference_sha256,
            "contract_sha256": contract_sha256,
            "code_commit": code_commit,
            "code_version": code_version,
        },
        split_params={
            "seed": seed,
            "validation_fraction": validation_fraction,
            "holdout_fraction": holdout_fraction,
        },
    )
    return version


def record_rejection(run_id: str, evidence: Input[Artifact], tracking_uri: str, pipeline_run_id: str):
    """Attach the failing evidence and its reason to the run; nothing is registered."""
    from ml.components.register import record_rejection as run_step

    run_step(
        tracking_uri=tracking_uri,
        run_id=run_id,
        evidence_dir=evidence.path,
        pipeline_run_id=pipeline_run_id,
    )


def record_data_gate(
    evidence: Input[Artifact],
    tracking_uri: str,
    artifact_root: str,
    model_name: str,
    run_key: str,
    pipeline_run_id: str,
    data_sha256: str,
    reference_sha256: str,
    contract_sha256: str,
    code_commit: str,
    code_version: str,
):
    """Keep the data gate's attempt in MLflow when nothing is trained (data refused, or a no-op run)."""
    from ml.components.data_record import record_data_gate as run_step

    run_step(
        tracking_uri=tracking_uri,
        artifact_root=artifact_root,
        model_name=model_name,
        run_key=run_key,
        evidence_dir=evidence.path,
        pipeline_run_id=pipeline_run_id,
        identity={
            "data_sha256": data_sha256,
            "reference_sha256": reference_sha256,
            "contract_sha256": contract_sha256,
            "code_commit": code_commit,
            "code_version": code_version,
        },
    )


COMPONENT_FUNCTIONS = (
    load_snapshot,
    data_gate,
    record_data_gate,
    split_snapshot,
    train_and_evaluate,
    select_best,
    log_candidate,
    model_gate,
    register_challenger,
    record_rejection,
)


def _with_env(component: Any, env: dict[str, str]) -> Any:
    """The component, but every task it makes carries `env` (KFP sets it in the task's container)."""

    def make_task(**kwargs: Any) -> Any:
        task = component(**kwargs)
        for name, value in env.items():
            task.set_env_variable(name, value)
        return task

    return make_task


def make_components(base_image: str, env: dict[str, str] | None = None) -> SimpleNamespace:
    """Every component on `base_image`, which must already hold this project (no pip at run time);
    `env` is set in every task's container (the trainer image reference, for the version's tags)."""
    components = {
        func.__name__: dsl.component(func, base_image=base_image, install_kfp_package=False)
        for func in COMPONENT_FUNCTIONS
    }
    if env:
        components = {name: _with_env(component, env) for name, component in components.items()}
    return SimpleNamespace(**components)
