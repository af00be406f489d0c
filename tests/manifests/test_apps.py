"""apps/ and clusters/: every kustomization renders with the real `kubectl kustomize`, and every
rendered object validates (core kinds against Kubernetes' schemas, KServe kinds against the
upstream CRDs) through the lint engineer's validator, plus the conventions promotion relies on."""

from __future__ import annotations

import copy

import pytest

from sluice.lint.validate import validate_object
from sluice.promotion import overlay
from sluice.promotion.render import images_in, kustomize_build
from tests.conftest import REPO_ROOT

KUSTOMIZATIONS = sorted(
    p.parent.relative_to(REPO_ROOT).as_posix()
    for top in ("apps", "clusters")
    for p in (REPO_ROOT / top).rglob("kustomization.yaml")
)
MODELS = sorted(p.name for p in (REPO_ROOT / "apps").iterdir() if (p / "overlays").is_dir())




@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict]]:
    return {path: kustomize_build(REPO_ROOT / path) for path in KUSTOMIZATIONS}


def test_the_expected_kustomizations_exist():
    assert {"clusters/staging", "clusters/production", "apps/mlflow"} <= set(KUSTOMIZATIONS)
    assert MODELS, "no model under apps/"
    for model in MODELS:
        for env in overlay.ENVIRONMENTS:
            assert f"apps/{model}/overlays/{env}" in KUSTOMIZATIONS


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_renders_and_validates(path, rendered, schemas):
    objects = rendered[path]
    assert objects
    problems = [
        f"{o['kind']}/{o['metadata'].get('name')}: {f.rule} {'.'.join(map(str, f.keys))}: {f.message}"
        for o in objects
        for f in validate_object(o, schemas)
        if f.severity == "error"
    ]
    assert problems == []


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_images_pinned_labels_set_no_secrets(path, rendered):
    objects = rendered[path]
    assert [image for _, image in images_in(objects) if not overlay.is_pinned(image)] == []
    assert [o["metadata"]["name"] for o in objects if o["kind"] == "Secret"] == []
    for obj in objects:
        labels = obj["metadata"].get("labels") or {}
        assert labels.get("app.kubernetes.io/part-of") == "sluice", obj["metadata"]["name"]
        assert "app.kubernetes.io/managed-by" in labels
        if obj["kind"] != "Namespace":
            assert "app.kubernetes.io/name" in labels, obj["metadata"]["name"]
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata")
        if template is not None:
            assert "app.kubernetes.io/name" in template["labels"]


def test_the_validator_catches_a_broken_inference_service(rendered, schemas):
    """Proof the validation above can fail: a misspelt field and a wrong type are refused."""
    isvc = next(
        o for o in rendered["apps/credit-default/overlays/staging"] if o["kind"] == "InferenceService"
    )
    broken = copy.deepcopy(isvc)
    broken["spec"]["predictor"]["model"]["storageURI"] = "s3://typo"
    broken["spec"]["predictor"]["minReplicas"] = "two"
    messages = " ".join(f.message for f in validate_object(broken, schemas))
    assert "storageURI" in messages and "two" in messages


@pytest.mark.parametrize("env", overlay.ENVIRONMENTS)
def test_model_namespaces_carry_the_kyverno_selector_labels(env, rendered):
    namespaces = {o["metadata"]["name"]: o for o in rendered[f"clusters/{env}"] if o["kind"] == "Namespace"}
    labels = namespaces[f"models-{env}"]["metadata"]["labels"]
    assert labels["sluice.dev/models"] == "enabled" and labels["sluice.dev/environment"] == env
    services = [o for o in rendered[f"clusters/{env}"] if o["kind"] == "InferenceService"]
    assert services and all(o["metadata"]["namespace"] == f"models-{env}" for o in services)


def test_mlflow_runs_in_its_namespace_with_secrets_by_reference(rendered):
    objects = rendered["clusters/production"]
    assert "mlflow" in {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"}
    mlflow = [o for o in rendered["apps/mlflow"]]
    assert {o["kind"] for o in mlflow} >= {"Deployment", "Service", "StatefulSet", "ConfigMap", "Job"}
    assert all(o["metadata"]["namespace"] == "mlflow" for o in mlflow)
    refs = {
        ref["secretKeyRef"]["name"]
        for o in mlflow
        for c in o.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [])
        for env in c.get("env", [])
        if (ref := env.get("valueFrom")) and "secretKeyRef" in ref
    }
    assert refs == {"mlflow-postgresql", "mlflow-minio"}


@pytest.mark.parametrize("model", MODELS)
def test_production_overlay_has_canary_resources_and_replicas(model, rendered):
    isvc = next(o for o in rendered[f"apps/{model}/overlays/production"] if o["kind"] == "InferenceService")
    predictor = isvc["spec"]["predictor"]
    assert 0 < predictor["canaryTrafficPercent"] < 100
    assert 1 < predictor["minReplicas"] <= predictor["maxReplicas"]
    resources = predictor["model"]["resources"]
    assert resources["requests"] and resources["limits"]
    assert (
        predictor["model"]["runtime"] == "sluice-mlflow"
        and predictor["model"]["modelFormat"]["name"] == "mlflow"
    )


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("env", overlay.ENVIRONMENTS)
def test_each_overlay_has_a_parsable_machine_owned_file(model, env):
    path = overlay.overlay_file(REPO_ROOT, model, env)
    state = overlay.read(path)
    assert state is not None and state.resource == model
    assert overlay.FILE_NAME in (path.parent / "kustomization.yaml").read_text()
