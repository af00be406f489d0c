"""The training pipeline: load → data gate → (pass) train candidates → select → log → model gate
→ (pass) register `challenger`, else record the rejection; a data gate that trains nothing has its
attempt recorded in MLflow instead (record data gate).

With `retrain_only_on_drift`, a data gate that passes without finding drift also skips training
(a "no-op run": the evidence says the data was looked at and why nothing was retrained).

Compiled IR is committed at `ml/pipelines/training.yaml` (see `compile_pipeline`); a test
recompiles it and fails when it is stale. `sluice run` executes this same pipeline function with
the KFP local runner; `sluice submit` recompiles it with the trainer image given on the command
line and uploads it with `kfp.Client`.

Caching: the deterministic steps (load, split, train-and-evaluate, select) cache, keyed on the
data's sha256 and a fingerprint of the code (`code_version`), because local caching keys
artifacts by path, not content. Steps that judge or touch the registry never cache: the data gate
(freshness depends on the clock), logging, the model gate (the champion can change) and
registration (the registry is the truth, not a cache entry).
"""

from pathlib import Path

from kfp import compiler, dsl

from ml.components.definitions import make_components
from ml.registry.budget import Budget
from ml.training.candidates import (
    DEFAULT_HOLDOUT_FRACTION,
    DEFAULT_SEED,
    DEFAULT_SELECTION_TOLERANCE,
    DEFAULT_VALIDATION_FRACTION,
)
from sluice.environment import PYTHON_IMAGE, TRAINER_IMAGE_ENV

PIPELINE_NAME = "sluice-training"
COMPILED_PATH = Path(__file__).with_name("training.yaml")
# Image of the committed IR: plain Python (sluice.environment.PYTHON_IMAGE). Only a placeholder for
# the IR: a cluster needs an image that has Sluice installed, so `sluice submit` requires
# --trainer-image REF@sha256:... and recompiles with it.
DEFAULT_BASE_IMAGE = PYTHON_IMAGE
TRAIN_CPU_REQUEST = "1"
TRAIN_MEMORY_REQUEST = "2G"


def talks_to_mlflow(task, budget: Budget, retry: bool = True):
    """Bound a step's MLflow calls (`ml.registry.budget`). Only the steps that log or register
    retry: a tracking-server hiccup is worth another attempt, a failing gate never is."""
    for name, value in sorted(budget.http.items()):
        task.set_env_variable(name, value)
    return task.set_retry(**budget.retry()) if retry else task


def build_pipeline(base_image: str = DEFAULT_BASE_IMAGE, budget: Budget | None = None):
    """The pipeline function, with every component on `base_image` (the committed IR: defaults).

    A real trainer image (not the committed IR's placeholder) is also passed to every task as
    $SLUICE_TRAINER_IMAGE, so the log and register steps can tag what they ran in.
    """
    env = {} if base_image == DEFAULT_BASE_IMAGE else {TRAINER_IMAGE_ENV: base_image}
    c = make_components(base_image, env)
    budget = budget or Budget()

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Train candidates behind a data gate and a model gate; register the best as challenger.",
    )
    def training_pipeline(
        data_uri: str,
        contract_uri: str,
        reference_uri: str,
        data_sha256: str,
        reference_sha256: str,
        contract_sha256: str,
        model_name: str,
        tracking_uri: str,
        # No default on purpose: a list-of-dicts default is rendered into the IR's header comment in
        # hash order, which would make the compiled file differ between two identical compiles.
        # Callers pass ml.training.candidates.DEFAULT_CANDIDATES (sluice run/submit do).
        candidates: list,
        artifact_root: str = "",
        policy_uri: str = "",
        retrain_only_on_drift: bool = False,
        run_key: str = "",
        code_commit: str = "unknown",
        code_version: str = "",
        seed: int = DEFAULT_SEED,
        validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
        holdout_fraction: float = DEFAULT_HOLDOUT_FRACTION,
        selection_tolerance: float = DEFAULT_SELECTION_TOLERANCE,
        # Set by `sluice run --features`: the feature-store record (ml.features.record) the log and
        # register steps tag with and the model gate's skew check reads; "" for a snapshot run.
        feature_record_uri: str = "",
    ):
        identity = {
            "data_sha256": data_sha256,
            "reference_sha256": reference_sha256,
            "contract_sha256": contract_sha256,
            "code_commit": code_commit,
        }
        load = c.load_snapshot(
            data_uri=data_uri,
            reference_uri=reference_uri,
            contract_uri=contract_uri,
            code_version=code_version,
            **{k: identity[k] for k in ("data_sha256", "reference_sha256", "contract_sha256")},
        ).set_display_name("load")
        data_check = (
            c.data_gate(
                current=load.outputs["current"],
                reference=load.outputs["reference"],
                contract=load.outputs["contract"],
                policy_uri=policy_uri,
                retrain_only_on_drift=retrain_only_on_drift,
            )
            .set_display_name("data gate")
            .set_caching_options(False)
        )
        with dsl.If(data_check.outputs["Output"] == True):  # noqa: E712 - KFP condition
            split = c.split_snapshot(
                current=load.outputs["current"],
                contract=load.outputs["contract"],
                seed=seed,
                validation_fraction=validation_fraction,
                holdout_fraction=holdout_fraction,
                code_version=code_version,
            ).set_display_name("split")
            chosen = _train_and_select(c, split, load, candidates, seed, selection_tolerance, code_version)
            logged = talks_to_mlflow(
                c.log_candidate(
                    best_model=chosen.outputs["best_model"],
                    holdout=split.outputs["holdout"],
                    contract=load.outputs["contract"],
                    data_evidence=data_check.outputs["evidence"],
                    best=chosen.outputs["best"],
                    candidates=chosen.outputs["candidates"],
                    tracking_uri=tracking_uri,
                    artifact_root=artifact_root,
                    model_name=model_name,
                    run_key=run_key,
                    seed=seed,
                    code_version=code_version,
                    feature_record_uri=feature_record_uri,
                    **identity,
                )
                .set_display_name("log to MLflow")
                .set_caching_options(False),
                budget,
            )
            gate = talks_to_mlflow(
                c.model_gate(
                    model_uri=logged.outputs["model_uri"],
                    holdout=split.outputs["holdout"],
                    contract=load.outputs["contract"],
                    policy_uri=policy_uri,
                    tracking_uri=tracking_uri,
                    model_name=model_name,
                    feature_record_uri=feature_record_uri,
                    **identity,
                )
                .set_display_name("model gate")
                .set_caching_options(False),
                budget,
                retry=False,
            )
            with dsl.If(gate.outputs["Output"] == True):  # noqa: E712
                register = c.register_challenger(
                    run_id=logged.outputs["run_id"],
                    evidence=gate.outputs["evidence"],
                    best=chosen.outputs["best"],
                    holdout_metrics=logged.outputs["holdout_metrics"],
                    tracking_uri=tracking_uri,
                    model_name=model_name,
                    run_key=run_key,
                    pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                    seed=seed,
                    validation_fraction=validation_fraction,
                    holdout_fraction=holdout_fraction,
                    code_version=code_version,
                    feature_record_uri=feature_record_uri,
                    **identity,
                ).set_display_name("register challenger")
                talks_to_mlflow(register.set_caching_options(False), budget)
            with dsl.Else():
                reject = c.record_rejection(
                    run_id=logged.outputs["run_id"],
                    evidence=gate.outputs["evidence"],
                    tracking_uri=tracking_uri,
                    pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                ).set_display_name("record rejection")
                talks_to_mlflow(reject.set_caching_options(False), budget)
        with dsl.Else():
            _record_data_gate(
                c, data_check, identity, budget, tracking_uri=tracking_uri, artifact_root=artifact_root,
                model_name=model_name, run_key=run_key, code_version=code_version,
            )

    return training_pipeline


def _record_data_gate(c, data_check, identity: dict, budget: Budget, **params):
    """Nothing trains (data refused, or a no-op run): the data gate's attempt still goes to MLflow."""
    record = c.record_data_gate(
        evidence=data_check.outputs["evidence"],
        pipeline_run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
        **params,
        **identity,
    ).set_display_name("record data gate")
    talks_to_mlflow(record.set_caching_options(False), budget)


def _train_and_select(c, split, load, candidates, seed, selection_tolerance, code_version):
    """Fan out over the candidates (ParallelFor), fan in with dsl.Collected, pick the winner."""
    with dsl.ParallelFor(candidates, name="candidates") as candidate:
        fit = (
            c.train_and_evaluate(
                train=split.outputs["train"],
                validation=split.outputs["validation"],
                contract=load.outputs["contract"],
                candidate=candidate,
                seed=seed,
                code_version=code_version,
            )
            .set_display_name("train and evaluate")
            .set_cpu_request(TRAIN_CPU_REQUEST)
            .set_memory_request(TRAIN_MEMORY_REQUEST)
        )
    return c.select_best(
        models=dsl.Collected(fit.outputs["model"]),
        summaries=dsl.Collected(fit.outputs["Output"]),
        selection_tolerance=selection_tolerance,
        code_version=code_version,
    ).set_display_name("select")


def compile_pipeline(
    package_path: str | Path = COMPILED_PATH,
    base_image: str = DEFAULT_BASE_IMAGE,
    budget: Budget | None = None,
) -> Path:
    """Compile to IR YAML. Deterministic: same code, image and budget give the same bytes (the
    committed IR uses the default budget; `sluice submit` the one configured where it runs)."""
    package_path = Path(package_path)
    compiler.Compiler().compile(build_pipeline(base_image, budget), str(package_path))
    return package_path


if __name__ == "__main__":  # python -m ml.pipelines.training  → refresh the committed IR
    print(compile_pipeline())
