"""The model gate: may this candidate become the challenger?

It scores the candidate on the holdout (absolute accuracy, F1, ROC AUC), scores the current
champion (found by alias in the MLflow registry) on the SAME holdout so the regression ratio
compares like with like, serves the candidate the way production serves it (its `onnx` flavor
under `python -m ml.serving`) to check that the served answers equal the registered model's on
every holdout row and to measure latency at a stated load on a host quiet enough to judge it
(`gates.checks.serving`), and measures equal opportunity across the contract's sensitive
attribute. Every finding is a check in the evidence; only unusable input (no holdout, unknown
model, unreachable registry) raises.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from gates.checks.fairness import equal_opportunity, fairness_check
from gates.checks.labels import label_key, positive_mask
from gates.checks.quality import classification_metrics, confusion, quality_checks, regression_check
from gates.checks.serving import ServingSession, serving_session
from gates.checks.skew import not_applicable, skew_check
from gates.evidence import finalize, new_evidence, write_evidence
from gates.gate_policy import load_policy, policy_record
from ml.data.contract import Contract, coerce_to_contract, load_contract
from ml.registry.client import one_line
from ml.registry.models import download_model, find_alias
from sluice import scratch, tags
from sluice.errors import SluiceError
from sluice.git import code_commit


@dataclass
class Scored:
    """A model's answers on the holdout: positive-class mask and scores (for the metrics), and the
    raw labels and probabilities of a scikit-learn model (for the serving parity check)."""

    positive: np.ndarray
    scores: np.ndarray | None
    raw: tuple[np.ndarray, np.ndarray] | None = None


def predict(model_dir: Path, features: pd.DataFrame, positive_class: Any) -> Scored:
    """Predictions and scores. Scores need the sklearn flavour's predict_proba.

    Any other flavour is scored through pyfunc, whose output is labels only: ROC AUC is then
    recorded as not measurable rather than computed from hard labels.
    """
    flavors = yaml.safe_load((model_dir / "MLmodel").read_text()).get("flavors", {})
    if "sklearn" in flavors:
        import mlflow.sklearn

        model = mlflow.sklearn.load_model(str(model_dir))
        raw_labels = np.asarray(model.predict(features))
        labels = positive_mask(pd.Series(raw_labels), positive_class)
        if not hasattr(model, "predict_proba"):
            return Scored(labels, None)
        proba = np.asarray(model.predict_proba(features), dtype=np.float64)
        keys = [label_key(c) for c in model.classes_]
        positive = label_key(positive_class)
        scores = proba[:, keys.index(positive)] if positive in keys else None
        return Scored(labels, scores, (raw_labels, proba))
    import mlflow.pyfunc

    output = mlflow.pyfunc.load_model(str(model_dir)).predict(features)
    if isinstance(output, pd.DataFrame):
        output = output.iloc[:, 0]
    return Scored(positive_mask(pd.Series(np.asarray(output).ravel()), positive_class), None)


def _typed_holdout(holdout: pd.DataFrame, contract: Contract) -> tuple[pd.DataFrame, list[str]]:
    if not isinstance(holdout, pd.DataFrame):
        raise SluiceError(f"holdout must be a pandas DataFrame, got {type(holdout).__name__}")
    typed, problems = coerce_to_contract(holdout, contract)
    blocking = [p for p in problems if not p.startswith("unexpected column")]
    if blocking:
        raise SluiceError(f"holdout does not match contract {contract.name}: {blocking[0]}")
    notes = []
    labelled = typed[contract.label].notna()
    if not labelled.all():
        notes.append(f"{int((~labelled).sum())} holdout row(s) without a label were left out")
        typed = typed[labelled]
    if typed.empty:
        raise SluiceError("holdout has no labelled rows to evaluate on")
    return typed, notes


def _frame_sha256(frame: pd.DataFrame) -> str:
    """Content identity of an in-memory holdout: sha256 over its row hashes and column names."""
    digest = hashlib.sha256(",".join(map(str, frame.columns)).encode())
    digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()


@dataclass
class Judged:
    """What the gate found, gathered while the candidate is served, before evidence is written."""

    checks: list[dict]
    notes: list[str]
    metrics: dict
    y_pred: Any
    raw: tuple[np.ndarray, np.ndarray] | None = None
    champion: dict | None = None
    champion_metrics: dict | None = None
    serving: ServingSession | None = None


def run_model_gate(
    model_uri: str,
    holdout: pd.DataFrame,
    contract: Contract | str | Path,
    policy_path: str | Path | None = None,
    *,
    tracking_uri: str,
    model_name: str,
    champion_alias: str = "champion",
    subject: dict | None = None,
    out_dir: str | Path = ".",
    stem: str = "model-evidence",
    feature_record: dict | None = None,
) -> dict:
    """Gate a candidate and write `<stem>.json/.md/.html` into out_dir; returns the evidence.

    `feature_record` is the feature-store record of a model trained from the store (ml.features.runs):
    the skew check then compares online and offline values; without it the check is advisory."""
    contract = contract if isinstance(contract, Contract) else load_contract(contract)
    policy = load_policy(policy_path, model_name)
    model_policy = policy["model"]
    typed, notes = _typed_holdout(holdout, contract)
    features = typed[[c.name for c in contract.features]]
    y_true = positive_mask(typed[contract.label], contract.positive_class)

    with scratch.directory("gate") as tmp:  # under Sluice's temp root: swept if the gate is killed
        model_dir = download_model(model_uri, tracking_uri, Path(tmp) / "candidate")
        # The server starts now and loads the model while the holdout is scored; the serving
        # checks only wait for /ping, so its start-up (~2 s here) overlaps the work below.
        with serving_session(model_dir, model_policy, model_name, feature_record) as serving:
            judged = _judge_quality(model_uri, model_dir, features, y_true, contract, model_policy, notes)
            _judge_regression(
                judged, Path(tmp), features, y_true, contract, model_policy, tracking_uri, model_name,
                champion_alias,
            )
            judged.serving = serving
            judged.checks += serving.judge(features, judged.raw)

    attribute = contract.sensitive_attribute
    fairness = None
    if attribute and attribute in typed.columns:
        fairness = equal_opportunity(
            y_true, judged.y_pred, typed[attribute], model_policy["fairness"]["min_group_positives"]
        )
    judged.checks.append(fairness_check(fairness, attribute, model_policy["fairness"]))
    skew = skew_check(feature_record, model_policy["skew"]) if feature_record else not_applicable()
    judged.checks.append(skew)
    full_subject = {
        "model": model_name,
        "model_uri": model_uri,
        "contract_sha256": contract.sha256 or None,
        "code_commit": code_commit(),
        **(subject or {}),
    }
    if feature_record:
        facts = feature_record["facts"]
        full_subject.update(
            feature_service=facts["feature_service"], feature_service_digest=facts["feature_service_digest"]
        )
    if not full_subject.get("holdout_sha256"):
        full_subject["holdout_sha256"] = _frame_sha256(typed)
        notes.append("holdout_sha256 is computed over the holdout's row hashes (no file was given)")
    evidence = _evidence(judged, full_subject, y_true, fairness, attribute, policy)
    finalize(evidence)
    write_evidence(evidence, out_dir, stem)
    return evidence


def _judge_quality(model_uri, model_dir, features, y_true, contract, model_policy, notes) -> Judged:
    try:
        scored = predict(model_dir, features, contract.positive_class)
    except Exception as exc:  # a model that cannot predict on its own contract's data is a bad input
        raise SluiceError(f"candidate {model_uri} cannot predict on the holdout: {one_line(exc)}") from exc
    metrics = classification_metrics(y_true, scored.positive, scored.scores)
    checks = quality_checks(metrics, model_policy["quality"])
    return Judged(checks, notes, metrics, scored.positive, scored.raw)


def _judge_regression(
    judged: Judged, tmp: Path, features, y_true, contract, model_policy, tracking_uri, model_name, alias
) -> None:
    """Score the champion on the SAME holdout, so the ratio compares like with like."""
    version = find_alias(tracking_uri, model_name, alias)
    if version is None:
        judged.notes.append(f"no model version of {model_name} holds alias {alias!r}: first deployment")
    else:
        uri = f"models:/{model_name}/{version.version}"
        judged.champion = {"alias": alias, "version": str(version.version), "model_uri": uri}
        try:
            champ_dir = download_model(uri, tracking_uri, tmp / "champion")
            champ = predict(champ_dir, features, contract.positive_class)
            judged.champion_metrics = classification_metrics(y_true, champ.positive, champ.scores)
            judged.champion["f1"] = judged.champion_metrics["f1"]
        except Exception as exc:  # recorded: an unscorable champion cannot vouch for no regression
            judged.champion["error"] = one_line(exc)
    judged.checks.append(regression_check(judged.metrics["f1"], judged.champion, model_policy["regression"]))


def _evidence(judged: Judged, subject: dict, y_true, fairness, attribute, policy) -> dict:
    plots: dict = {
        "confusion_matrix": {"labels": ["negative", "positive"], "matrix": confusion(y_true, judged.y_pred)}
    }
    latency_record = judged.serving.evidence()
    if judged.serving.latency is not None:
        plots["latency_histogram"] = judged.serving.latency["histogram"]
    return new_evidence(
        "model",
        judged.checks,
        subject=subject,
        notes=judged.notes,
        extra={
            "metrics": {"candidate": judged.metrics, "champion": judged.champion_metrics},
            "champion": judged.champion,
            "latency": latency_record,
            "fairness": {"attribute": attribute, **(fairness or {})},
            "plots": plots,
            "policy": policy_record(policy),
        },
    )


def attach_evidence(client: Any, model_name: str, version: str | int, paths: list[str | Path]) -> str:
    """Keep this gate attempt on the version's run and point the version's evidence tags at it.

    The files go under the run's `evidence/<attempt>/` next to every earlier attempt (never over
    one); the version's tags (`sluice.tags` EVIDENCE_SHA256, EVIDENCE_PASSED, EVIDENCE_ARTIFACT,
    EVIDENCE_ATTEMPT) then describe this attempt, which is what `sluice promote` verifies by
    digest. Returns the digest.
    """
    from mlflow.exceptions import MlflowException

    from gates.evidence.history import describe_attempt, record_attempt, verdict_tags

    json_paths = [Path(p) for p in paths if Path(p).suffix == ".json"]
    if len(json_paths) != 1:
        raise SluiceError(f"attach_evidence needs exactly one .json among {', '.join(map(str, paths))}")
    try:
        mv = client.get_model_version(model_name, str(version))
        if mv.run_id:
            attempt = record_attempt(client, mv.run_id, json_paths[0])
        else:  # a version without a run: its tags are all the evidence trail there can be
            attempt = describe_attempt(json_paths[0])
        version_tags = verdict_tags(attempt)
        if not mv.run_id:
            version_tags = {k: v for k, v in version_tags.items() if k != tags.EVIDENCE_ARTIFACT}
        for key, value in version_tags.items():
            client.set_model_version_tag(model_name, str(version), key, value)
    except MlflowException as exc:
        raise SluiceError(
            f"cannot attach evidence to {model_name} version {version}: {one_line(exc)}"
        ) from exc
    return attempt.sha256
