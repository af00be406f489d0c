"""The admission Application: it delivers exactly the Kyverno policies in `policies/` (never the
Kyverno CLI test inputs under policies/tests/), heals and prunes them, survives its own deletion,
and the root applies it in an earlier sync wave than anything that deploys models — with the
Application health check that makes the root actually wait for it.

Why the health check matters: Argo CD's sync (gitops-engine `syncContext.Sync`) waits between
waves only for resources that are still "running", i.e. applied but not yet Healthy; a resource
with no health check counts as healthy at once, and Argo CD has not assessed Application health
since 1.8. Without `resource.customizations.health.argoproj.io_Application` the waves would order
only the creation of the child Applications, not their syncs.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from tests.conftest import REPO_ROOT
from tests.manifests.argocd.conftest import kustomize

ADMISSION = "sluice-admission"
WAVE = "argocd.argoproj.io/sync-wave"
APP_HEALTH_KEY = "resource.customizations.health.argoproj.io_Application"
POLICIES = REPO_ROOT / "policies"


def wave(doc: dict[str, Any]) -> int:
    return int(doc["metadata"].get("annotations", {}).get(WAVE, "0"))


def deploys_models(app: dict[str, Any]) -> bool:
    return str(app["spec"]["source"]["path"]).startswith("clusters/")


def wave_problems(docs: list[dict[str, Any]]) -> list[str]:
    """Why the root could apply a model environment before the policies are Ready."""
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    projects = {d["metadata"]["name"]: d for d in docs if d["kind"] == "AppProject"}
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cm"]
    problems = []
    admission = apps[ADMISSION]
    for name, app in sorted(apps.items()):
        if deploys_models(app) and wave(app) <= wave(admission):
            problems.append(f"{name} (wave {wave(app)}) is not after {ADMISSION} (wave {wave(admission)})")
    # The last wave is never waited on; every earlier one is.
    final = max(wave(d) for d in docs)
    waited = [a for a in apps.values() if wave(a) < final]
    if waited and APP_HEALTH_KEY not in cm.get("data", {}):
        problems.append("argocd-cm has no Application health check: the root would not wait for any wave")
    if waited and wave(cm) >= min(wave(a) for a in waited):
        problems.append(f"argocd-cm (wave {wave(cm)}) must come before the first waited-on Application")
    for app in waited:
        name, project = app["metadata"]["name"], projects.get(app["spec"]["project"])
        if project is None or wave(project) >= wave(app):
            problems.append(
                f"{name}: project {app['spec']['project']} is not in an earlier wave; the root would wait "
                "forever for an Application whose project does not exist yet"
            )
    return problems


def test_admission_delivers_the_policies_folder(applications) -> None:
    app = applications[ADMISSION]
    assert app["spec"]["project"] == ADMISSION
    assert app["spec"]["source"]["path"] == "policies"
    assert app["spec"]["destination"] == {"server": "https://kubernetes.default.svc", "namespace": "kyverno"}


def test_policies_render_exactly_their_own_files_not_the_cli_tests() -> None:
    rendered = {(d["kind"], d["metadata"]["name"]) for d in kustomize(POLICIES)}
    own = {
        (d["kind"], d["metadata"]["name"])
        for path in POLICIES.glob("*.yaml")
        if path.name != "kustomization.yaml"
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert rendered == own
    cli_inputs = {
        (d["kind"], d["metadata"]["name"])
        for path in (POLICIES / "tests").rglob("resources.yaml")
        for d in yaml.safe_load_all(path.read_text())
        if d
    }
    assert cli_inputs and not rendered & cli_inputs
    kinds = {kind for kind, _ in rendered}
    assert kinds == {"ClusterPolicy", "ConfigMap"}, kinds


def test_policies_heal_and_prune_but_never_all_at_once(applications) -> None:
    policy = applications[ADMISSION]["spec"]["syncPolicy"]
    assert policy["automated"] == {"prune": True, "selfHeal": True, "allowEmpty": False}
    assert {
        "ServerSideApply=true",
        "PruneLast=true",
        "CreateNamespace=false",
        "FailOnSharedResource=true",
    } <= set(policy["syncOptions"])
    compare = applications[ADMISSION]["metadata"]["annotations"]["argocd.argoproj.io/compare-options"]
    assert "ServerSideDiff=true" in compare.split(",")


def test_deleting_the_admission_application_leaves_the_policies(applications) -> None:
    meta = applications[ADMISSION]["metadata"]
    assert "resources-finalizer.argocd.argoproj.io" not in meta.get("finalizers", [])
    options = set(meta["annotations"]["argocd.argoproj.io/sync-options"].split(","))
    assert {"Prune=false", "Delete=false"} <= options


def test_policies_are_in_place_before_models_are_deployed(argocd_docs, applications) -> None:
    assert wave_problems(argocd_docs) == []
    models = [n for n, a in applications.items() if deploys_models(a)]
    assert sorted(models) == ["sluice-production", "sluice-staging"]
    earliest = min(wave(a) for a in applications.values())
    assert [n for n, a in applications.items() if wave(a) == earliest] == [ADMISSION]


def _mutated(docs: list[dict[str, Any]], kind: str, name: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    docs = copy.deepcopy(docs)
    (doc,) = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    return docs, doc


def test_the_wave_check_notices_admission_in_the_same_wave_as_models(argocd_docs) -> None:
    docs, admission = _mutated(argocd_docs, "Application", ADMISSION)
    admission["metadata"]["annotations"].pop(WAVE)
    problems = wave_problems(docs)
    assert any(p.startswith("sluice-staging (wave 0) is not after") for p in problems), problems
    assert any(p.startswith("sluice-production (wave 0) is not after") for p in problems), problems


def test_the_wave_check_notices_a_root_that_would_not_wait(argocd_docs) -> None:
    docs, cm = _mutated(argocd_docs, "ConfigMap", "argocd-cm")
    del cm["data"][APP_HEALTH_KEY]
    assert wave_problems(docs) == [
        "argocd-cm has no Application health check: the root would not wait for any wave"
    ]


def test_the_wave_check_notices_a_project_that_comes_too_late(argocd_docs) -> None:
    docs, project = _mutated(argocd_docs, "AppProject", ADMISSION)
    project["metadata"]["annotations"].pop(WAVE)
    problems = wave_problems(docs)
    assert len(problems) == 1 and problems[0].startswith(f"{ADMISSION}: project {ADMISSION} is not"), problems
