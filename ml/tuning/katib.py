"""The search space as a Katib Experiment (kubeflow.org/v1beta1): the cluster side of `sluice tune`.

Same space, same objective, same budget: `multivariate-tpe` (served by Katib's Optuna suggestion
service with TPESampler(multivariate=True, constant_liar=True), seeded with `random_state`),
`medianstop` for early stopping, and trials that run `python -m ml.tuning.trial` in the signed
trainer image, printing the running cross-validated score per fold in the StdOut collector's
`metric=value` format (the objective takes the latest value).

An Experiment's spec is immutable once created (Katib's webhook accepts changes to the trial
counts only), so the name carries a digest of the spec: a changed space, image or data path is a
new Experiment that Argo CD creates (and the old one is pruned), never a refused update.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from ml.tuning.space import SearchSpace

API_VERSION = "kubeflow.org/v1beta1"
KIND = "Experiment"
CONTAINER = "trial"
MAX_NAME = 40  # Katib: an Experiment name is a DNS label of at most 40 characters
TRIAL_MODULE = "ml.tuning.trial"
KATIB_TYPES = {"int": "int", "float": "double", "categorical": "categorical"}


@dataclass(frozen=True)
class ClusterInputs:
    """Where the trials run and what they read, from the model's retraining declaration."""

    namespace: str
    data: str
    contract: str
    claim: str  # the data PersistentVolumeClaim, mounted read-only at /data
    service_account: str
    trainer_image: str


def _parameter(p) -> dict[str, Any]:
    space: dict[str, Any]
    if p.type == "categorical":
        space = {"list": [str(c) for c in p.choices]}
    else:
        space = {"min": _number(p.low, p.type), "max": _number(p.high, p.type)}
        if p.step is not None:
            space["step"] = _number(p.step, p.type)
        space["distribution"] = "logUniform" if p.log else "uniform"
    return {"name": p.name, "parameterType": KATIB_TYPES[p.type], "feasibleSpace": space}


def _number(value: float, kind: str) -> str:
    """Katib takes bounds as strings; ints without a decimal point."""
    return str(int(value)) if kind == "int" else repr(float(value))


def _trial_job(space: SearchSpace, cluster: ClusterInputs) -> dict[str, Any]:
    args = [
        f"--model={space.model}",
        f"--space-sha256={space.sha256}",
        f"--data={cluster.data}",
        f"--contract={cluster.contract}",
        *[f"--set={p.name}=${{trialParameters.{p.name}}}" for p in space.parameters],
    ]
    container = {
        "name": CONTAINER,
        "image": cluster.trainer_image,
        "command": ["python", "-m", TRIAL_MODULE],
        "args": args,
        "env": [{"name": "HOME", "value": "/home/sluice"}],
        "resources": {"requests": {"cpu": "1", "memory": "2Gi"}, "limits": {"memory": "4Gi"}},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "data", "mountPath": "/data", "readOnly": True},
            {"name": "home", "mountPath": "/home/sluice"},
        ],
    }
    pod = {
        "restartPolicy": "Never",
        "serviceAccountName": cluster.service_account,
        "automountServiceAccountToken": False,
        "containers": [container],
        "volumes": [
            {"name": "data", "persistentVolumeClaim": {"claimName": cluster.claim, "readOnly": True}},
            {"name": "home", "emptyDir": {}},
        ],
    }
    labels = {"app.kubernetes.io/part-of": "sluice", "app.kubernetes.io/component": "tuning"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": labels}, "spec": pod}},
    }


def spec(space: SearchSpace, cluster: ClusterInputs) -> dict[str, Any]:
    """The Experiment's spec for `space` (no metadata: the name is derived from this)."""
    out: dict[str, Any] = {
        "objective": {
            "type": space.direction,
            "objectiveMetricName": space.metric,
            # Every fold prints the running mean; the last line is the trial's cross-validated score.
            "metricStrategies": [{"name": space.metric, "value": "latest"}],
        },
        "algorithm": {
            "algorithmName": "multivariate-tpe",
            "algorithmSettings": [
                {"name": "random_state", "value": str(space.seed)},
                {"name": "n_startup_trials", "value": str(space.startup_trials)},
            ],
        },
        "parallelTrialCount": space.parallel,
        "maxTrialCount": space.trials,
        "maxFailedTrialCount": space.max_failed,
        "resumePolicy": "Never",
        "metricsCollectorSpec": {"collector": {"kind": "StdOut"}},
        "parameters": [_parameter(p) for p in space.parameters],
        "trialTemplate": {
            "primaryContainerName": CONTAINER,
            "successCondition": 'status.conditions.#(type=="Complete")#|#(status=="True")#',
            "failureCondition": 'status.conditions.#(type=="Failed")#|#(status=="True")#',
            "trialParameters": [
                {"name": p.name, "reference": p.name, "description": f"{space.candidate} {p.name}"}
                for p in space.parameters
            ],
            "trialSpec": _trial_job(space, cluster),
        },
    }
    if space.early_stopping:
        stop = space.early_stopping
        out["earlyStopping"] = {
            "algorithmName": "medianstop",
            "algorithmSettings": [
                {"name": "min_trials_required", "value": str(stop["min_trials"])},
                {"name": "start_step", "value": str(stop.get("start_step", 1))},
            ],
        }
    return out


def experiment_name(model: str, body: dict[str, Any]) -> str:
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:8]
    prefix = f"{model}-tune"[: MAX_NAME - 9].rstrip("-")
    return f"{prefix}-{digest}"


def render(space: SearchSpace, cluster: ClusterInputs, shown_space: str) -> dict[str, Any]:
    body = spec(space, cluster)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": experiment_name(space.model, body),
            "namespace": cluster.namespace,
            "labels": {
                "app.kubernetes.io/name": f"{space.model}-tuning",
                "app.kubernetes.io/part-of": "sluice",
                "app.kubernetes.io/component": "tuning",
                "sluice.dev/model": space.model,
            },
            "annotations": {
                "sluice.dev/search-space": shown_space,
                "sluice.dev/search-space-sha256": space.sha256,
            },
        },
        "spec": body,
    }


HEADER = (
    "# Rendered by `sluice tune --katib` from {space}; do not edit: change the search space and\n"
    "# render again (tests fail when this file is stale). The name carries a digest of the spec, so\n"
    "# a change is a new Experiment (Katib refuses edits to a running one).\n"
    "# yamllint disable rule:line-length\n"
)


def to_yaml(experiment: dict[str, Any], note: str = "") -> str:
    header = HEADER.format(space=experiment["metadata"]["annotations"]["sluice.dev/search-space"])
    body = yaml.safe_dump(experiment, sort_keys=False, default_flow_style=False, width=4096)
    return header + note + body
