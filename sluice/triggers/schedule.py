"""A model's retraining schedule in git (`apps/<model>/training/retraining.yaml`), and its CronJob.

The declaration says when (cron, time zone), on what (snapshot, reference, contract on the data
volume), under which policy, and where the event goes (EventListener URL, Secret by name, the
repository the run checks out). `sluice trigger render` turns it into a CronJob that Argo CD
delivers: on schedule it hashes the snapshot and posts a signed `sluice_retrain` event, and the
EventListener starts the `sluice-retrain` pipeline (train and gate with the signed trainer image
the environment already runs; no image is built). The event flows exactly like a push.

The CronJob runs `sluice/triggers/event.py` itself, embedded, in a pinned plain Python image: it
holds no credentials but the retraining trigger's Secret (by name), and it needs no Sluice image,
so a schedule keeps working across deliveries.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from sluice.environment import PYTHON_IMAGE
from sluice.errors import SluiceError
from sluice.triggers import cron, event
from sluice.yamlfile import load_yaml_mapping

SCHEMA_PATH = Path(__file__).with_name("retraining.schema.json")
DECLARATION = "retraining.yaml"
CRONJOB_FILE = "cronjob.yaml"
CONTAINER = "post-event"
HEADER = (
    "# Rendered by `sluice trigger render` from {source}; do not edit: change the declaration and\n"
    "# render again (tests fail when this file is stale). The container runs sluice/triggers/event.py\n"
    "# (embedded below) to post a signed `sluice_retrain` event to the EventListener.\n"
    "# yamllint disable rule:line-length\n"
)


@dataclass(frozen=True)
class Schedule:
    model: str
    schedule: str
    time_zone: str
    suspend: bool
    namespace: str
    current: str
    reference: str
    contract: str
    claim: str
    policy: str | None
    url: str
    secret: str
    trigger_account: str
    tune_account: str
    repository_url: str
    repository_name: str
    ref: str
    path: Path

    @property
    def cronjob_name(self) -> str:
        return f"sluice-retrain-{self.model}"


@cache
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def default_path(root: Path, model: str) -> Path:
    return root / "apps" / model / "training" / DECLARATION


def _check_time_zone(name: str, path: Path) -> None:
    """The API server refuses a CronJob whose timeZone is not in its tz database; refuse it here first."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise SluiceError(
            f"retraining schedule {path}: timeZone: unknown time zone {name!r} (an IANA name such as Etc/UTC)"
        ) from exc


def load(path: str | Path) -> Schedule:
    """The declaration, checked: schema, then the cron grammar Kubernetes applies; one line otherwise."""
    import jsonschema

    path = Path(path)
    doc, _ = load_yaml_mapping(path, "retraining schedule")
    errors = sorted(
        jsonschema.Draft202012Validator(schema()).iter_errors(doc), key=lambda e: list(map(str, e.path))
    )
    if errors:
        where = ".".join(str(p) for p in errors[0].absolute_path) or "(top level)"
        raise SluiceError(f"retraining schedule {path}: {where}: {errors[0].message}")
    try:
        cron.check(doc["schedule"])
    except cron.CronError as exc:
        raise SluiceError(f"retraining schedule {path}: {exc}") from exc
    _check_time_zone(doc.get("timeZone", "Etc/UTC"), path)
    data, trigger, repo = doc["data"], doc["trigger"], doc["repository"]
    return Schedule(
        model=doc["model"],
        schedule=doc["schedule"],
        time_zone=doc.get("timeZone", "Etc/UTC"),
        suspend=doc.get("suspend", False),
        namespace=doc.get("namespace", "sluice-ci"),
        current=data["current"],
        reference=data["reference"],
        contract=data["contract"],
        claim=data.get("claim", "sluice-data"),
        policy=doc.get("policy"),
        url=trigger["url"],
        secret=trigger["secret"],
        trigger_account=trigger.get("serviceAccount", "sluice-trigger"),
        tune_account=(doc.get("tuning") or {}).get("serviceAccount", "sluice-tune"),
        repository_url=repo["url"],
        repository_name=repo["name"],
        ref=repo.get("ref", "refs/heads/main"),
        path=path,
    )


def _env(s: Schedule) -> list[dict[str, Any]]:
    values = {
        "url": s.url,
        "kind": "schedule",
        "model": s.model,
        "data": s.current,
        "reference": s.reference,
        "contract": s.contract,
        "repository_url": s.repository_url,
        "repository_name": s.repository_name,
        "ref": s.ref,
    }
    env: list[dict[str, Any]] = [{"name": event.ENV[k], "value": v} for k, v in values.items()]
    env.append(
        {"name": event.ENV["secret"], "valueFrom": {"secretKeyRef": {"name": s.secret, "key": "secret"}}}
    )
    return sorted(env, key=lambda e: e["name"])


def cronjob(s: Schedule, shown: str) -> dict[str, Any]:
    """The CronJob for a schedule: one event per slot, none piling up, no credentials but its Secret."""
    labels = {
        "app.kubernetes.io/name": s.cronjob_name,
        "app.kubernetes.io/part-of": "sluice",
        "app.kubernetes.io/component": "retraining-trigger",
        "sluice.dev/model": s.model,
    }
    container = {
        "name": CONTAINER,
        "image": PYTHON_IMAGE,
        "command": ["python", "-I", "-c", event_source()],
        "env": _env(s),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
    }
    pod = {
        "restartPolicy": "Never",
        "serviceAccountName": s.trigger_account,
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": s.claim, "readOnly": True}}],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": s.cronjob_name,
            "namespace": s.namespace,
            "labels": labels,
            "annotations": {"sluice.dev/retraining-schedule": shown},
        },
        "spec": {
            "schedule": s.schedule,
            "timeZone": s.time_zone,
            "suspend": s.suspend,
            # One event per slot: a slow listener never gets two, and the run key de-duplicates anyway.
            "concurrencyPolicy": "Forbid",
            # A slot missed while the controller was down fires within the hour, never days later.
            "startingDeadlineSeconds": 3600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {
                "spec": {
                    "backoffLimit": 2,
                    "activeDeadlineSeconds": 600,
                    "template": {"metadata": {"labels": labels}, "spec": pod},
                }
            },
        },
    }


def event_source() -> str:
    """The poster the CronJob runs: this package's event.py, byte for byte."""
    return Path(event.__file__).read_text(encoding="utf-8")


class _Literal(yaml.SafeDumper):
    """Multi-line strings (the embedded script) as `|` blocks, so the manifest stays reviewable;
    no anchors (a reader should not have to resolve `*id001`)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str):
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Literal.add_representer(str, _str)


def to_yaml(obj: dict[str, Any], source: str) -> str:
    body = yaml.dump(obj, Dumper=_Literal, sort_keys=False, default_flow_style=False, width=4096)
    return HEADER.format(source=source) + body
