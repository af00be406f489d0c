"""The Argo CD objects in `.argocd/`: schema-valid, pointing at folders that render, and a
project that allows exactly what those folders contain — nothing by wildcard."""

from __future__ import annotations

import copy
import fnmatch
import functools
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT
from tests.manifests.argocd.conftest import ARGOCD_DIR, kustomize

PROJECTS = ["sluice", "sluice-ci", "sluice-bootstrap", "sluice-admission"]
# argocd-cm keys and the scripts they must carry, byte for byte.
HEALTH_SCRIPTS = {
    "resource.customizations.health.serving.kserve.io_InferenceService": "inferenceservice.lua",
    "resource.customizations.health.argoproj.io_Application": "application.lua",
}
# Cluster-scoped built-in kinds a Sluice environment could plausibly render; CRD scopes are read
# from the upstream CRDs themselves.
CORE_CLUSTER_KINDS = {
    ("", "Namespace"),
    ("", "PersistentVolume"),
    ("", "Node"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("networking.k8s.io", "IngressClass"),
    ("admissionregistration.k8s.io", "MutatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding"),
}


def group_of(obj: dict[str, Any]) -> str:
    api = obj["apiVersion"]
    return api.split("/")[0] if "/" in api else ""


@functools.cache
def cluster_scoped_kinds(crd_files: tuple[Path, ...]) -> frozenset[tuple[str, str]]:
    kinds = set(CORE_CLUSTER_KINDS)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in crd_files:
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "CustomResourceDefinition"
                and (doc["spec"].get("scope") == "Cluster")
            ):
                kinds.add((doc["spec"]["group"], doc["spec"]["names"]["kind"]))
    return frozenset(kinds)


def test_every_argocd_object_matches_its_upstream_schema(argocd_docs, validate) -> None:
    kinds = sorted({d["kind"] for d in argocd_docs})
    assert {"AppProject", "Application", "ConfigMap"} <= set(kinds), kinds
    problems = [f"{d['kind']}/{d['metadata']['name']}: {m}" for d in argocd_docs for m in validate(d)]
    assert problems == []


def test_the_schema_check_rejects_what_argo_cd_would(applications, validate) -> None:
    """Proof the validator bites: a misspelt sync policy key and a wrong type are refused."""
    broken = copy.deepcopy(applications["sluice-staging"])
    broken["spec"]["syncPolicy"]["automatic"] = {"prune": True}
    broken["spec"]["revisionHistoryLimit"] = "ten"
    messages = " | ".join(validate(broken))
    assert "automatic" in messages and "revisionHistoryLimit" in messages


def test_one_git_repository_and_revision_everywhere(argocd_docs, applications, projects) -> None:
    """git-repo.yaml is the single edit point; kustomize must have copied it everywhere."""
    source = yaml.safe_load((ARGOCD_DIR / "git-repo.yaml").read_text())["data"]
    assert all(d["metadata"]["name"] != "sluice-git-repo" for d in argocd_docs), "local-config object leaked"
    for name, app in applications.items():
        assert app["spec"]["source"]["repoURL"] == source["url"], name
        assert app["spec"]["source"]["targetRevision"] == source["revision"], name
    for name, project in projects.items():
        assert project["spec"]["sourceRepos"] == [source["url"]], name


def test_every_application_points_at_a_folder_that_renders(applications) -> None:
    assert set(applications) == {
        "sluice-root",
        "sluice-staging",
        "sluice-production",
        "sluice-ci",
        "sluice-admission",
    }
    for name, app in applications.items():
        path = REPO_ROOT / app["spec"]["source"]["path"]
        assert path.is_dir(), f"{name}: source path {app['spec']['source']['path']} does not exist"
        assert (path / "kustomization.yaml").is_file(), f"{name}: {path} has no kustomization.yaml"
        assert kustomize(path), f"{name}: {path} renders nothing"
    assert applications["sluice-root"]["spec"]["source"]["path"] == ".argocd"


def _environment_objects(applications, project: str) -> dict[str, list[dict[str, Any]]]:
    return {
        name: kustomize(REPO_ROOT / app["spec"]["source"]["path"])
        for name, app in applications.items()
        if app["spec"]["project"] == project
    }


def _allowed(entry: dict[str, str], group: str, kind: str, name: str | None = None) -> bool:
    if entry["group"] != group or entry["kind"] != kind:
        return False
    return name is None or "name" not in entry or fnmatch.fnmatchcase(name, entry["name"])


@pytest.mark.parametrize("project", PROJECTS)
def test_project_allows_exactly_what_its_applications_render(
    applications, projects, pinned_crds, project
) -> None:
    """No wildcard and no stale entry: the allow lists are what the source folders contain."""
    spec = projects[project]["spec"]
    cluster_kinds = cluster_scoped_kinds(tuple(sorted(pinned_crds.files.values())))
    rendered = _environment_objects(applications, project)
    assert rendered, f"no Application uses project {project}"
    cluster_objs = [
        o for objs in rendered.values() for o in objs if (group_of(o), o["kind"]) in cluster_kinds
    ]
    namespaced = [
        o for objs in rendered.values() for o in objs if (group_of(o), o["kind"]) not in cluster_kinds
    ]

    refused = [
        f"{o['kind']}/{o['metadata']['name']}"
        for o in cluster_objs
        if not any(
            _allowed(e, group_of(o), o["kind"], o["metadata"]["name"])
            for e in spec.get("clusterResourceWhitelist", [])
        )
    ]
    assert refused == [], f"cluster-scoped objects the project would refuse: {refused}"
    unused = [
        e
        for e in spec.get("clusterResourceWhitelist", [])
        if not any(_allowed(e, group_of(o), o["kind"], o["metadata"]["name"]) for o in cluster_objs)
    ]
    assert unused == [], f"clusterResourceWhitelist entries nothing renders: {unused}"

    wanted = {(group_of(o), o["kind"]) for o in namespaced}
    listed = {(e["group"], e["kind"]) for e in spec.get("namespaceResourceWhitelist", [])}
    assert wanted - listed == set(), f"namespaced kinds the project would refuse: {sorted(wanted - listed)}"
    assert listed - wanted == set(), (
        f"namespaceResourceWhitelist entries nothing renders: {sorted(listed - wanted)}"
    )


@pytest.mark.parametrize("project", PROJECTS)
def test_project_destinations_are_exactly_the_namespaces_used(
    applications, projects, pinned_crds, project
) -> None:
    spec = projects[project]["spec"]
    allowed = {(d["server"], d["namespace"]) for d in spec["destinations"]}
    cluster_kinds = cluster_scoped_kinds(tuple(sorted(pinned_crds.files.values())))
    used: set[tuple[str, str]] = set()
    for name, objs in _environment_objects(applications, project).items():
        dest = applications[name]["spec"]["destination"]
        used.add((dest["server"], dest["namespace"]))
        for o in objs:
            if (group_of(o), o["kind"]) not in cluster_kinds:
                used.add((dest["server"], o["metadata"].get("namespace", dest["namespace"])))
    assert used - allowed == set(), f"namespaces the project would refuse: {sorted(used - allowed)}"
    assert allowed - used == set(), f"destinations nothing deploys to: {sorted(allowed - used)}"


def test_no_wildcards_anywhere_in_the_projects(projects) -> None:
    for name, project in projects.items():
        spec = project["spec"]
        values = [*spec["sourceRepos"]]
        values += [
            v
            for d in spec["destinations"]
            for v in (d.get("server", ""), d.get("namespace", ""), d.get("name", ""))
        ]
        for key in ("clusterResourceWhitelist", "namespaceResourceWhitelist"):
            values += [v for e in spec.get(key, []) for v in e.values()]
        assert not [v for v in values if "*" in v], f"{name} uses a wildcard: {values}"


def test_ci_role_may_only_get_and_sync_staging(projects, applications) -> None:
    roles = {r["name"]: r for r in projects["sluice"]["spec"]["roles"]}
    assert set(roles) == {"ci"}
    rules = [[part.strip() for part in line.split(",")] for line in roles["ci"]["policies"]]
    staging = [n for n, a in applications.items() if a["spec"]["source"]["path"] == "clusters/staging"]
    assert staging == ["sluice-staging"]
    assert sorted(r[3] for r in rules) == ["get", "sync"]
    for rule in rules:
        assert rule[0] == "p" and rule[1] == "proj:sluice:ci", rule
        assert rule[2] == "applications" and rule[4] == "sluice/sluice-staging" and rule[5] == "allow", rule
    for other in set(projects) - {"sluice"}:
        assert projects[other]["spec"].get("roles", []) == [], f"{other}: only Argo CD admins act on it"


def test_argocd_cm_carries_exactly_the_tested_health_scripts(argocd_docs) -> None:
    (cm,) = [d for d in argocd_docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "argocd-cm"]
    assert set(cm["data"]) == set(HEALTH_SCRIPTS), "argocd-cm carries only health checks (server-side merged)"
    for key, script in HEALTH_SCRIPTS.items():
        assert cm["data"][key] == (ARGOCD_DIR / "health" / script).read_text(), key
    assert cm["metadata"]["labels"]["app.kubernetes.io/part-of"] == "argocd"


def test_argo_cd_settings_and_projects_survive_a_prune(argocd_docs) -> None:
    """The root app prunes; it must never prune the projects, argocd-cm, production or admission."""
    keep = [
        d
        for d in argocd_docs
        if d["kind"] in ("AppProject", "ConfigMap")
        or d["metadata"]["name"] in ("sluice-production", "sluice-root", "sluice-admission")
    ]
    for doc in keep:
        options = doc["metadata"].get("annotations", {}).get("argocd.argoproj.io/sync-options", "").split(",")
        assert {"Prune=false", "Delete=false"} <= set(options), doc["metadata"]["name"]
