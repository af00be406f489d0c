"""Least privilege, checked on the manifests: one ServiceAccount per duty, each holding only the
Secrets its tasks reference, no API token where none is needed, nothing bound in production, and
the git deploy key held by the promote account alone."""

from __future__ import annotations

import re

import pytest

from tests.manifests.tekton.resources import by_kind_name, steps

DEPLOY_KEY = "sluice-git-deploy-key"
PRODUCTION = "models-production"


def accounts(resources) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for _p, _l, o in resources if o["kind"] == "ServiceAccount"}


def held(account: dict) -> set[str]:
    return {s["name"] for s in account.get("secrets", [])}


def bindings(resources) -> list[dict]:
    return [o for _p, _l, o in resources if o["kind"] in {"RoleBinding", "ClusterRoleBinding"}]


def test_namespace_is_labelled(resources) -> None:
    labels = by_kind_name(resources, "Namespace", "sluice-ci")["metadata"]["labels"]
    assert labels["app.kubernetes.io/part-of"] == "sluice"
    assert {"app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/managed-by"} <= set(
        labels
    )


def test_only_the_promote_account_holds_the_deploy_key(resources) -> None:
    holders = [name for name, sa in accounts(resources).items() if DEPLOY_KEY in held(sa)]
    assert holders == ["sluice-promote"]


def test_no_task_names_the_deploy_key(resources) -> None:
    # It reaches the promote pods only through the account (Tekton's credential initialisation).
    for _p, _l, obj in resources:
        if obj["kind"] in {"Task", "Pipeline", "TriggerTemplate"}:
            assert DEPLOY_KEY not in str(obj), obj["metadata"]["name"]


def test_nothing_is_granted_in_production(resources) -> None:
    for binding in bindings(resources):
        assert binding["metadata"].get("namespace") != PRODUCTION
        if binding["kind"] == "ClusterRoleBinding":
            # Cluster-wide grants reach production too: only the EventListener's upstream role is allowed.
            assert [s["name"] for s in binding["subjects"]] == ["sluice-triggers"]
            assert binding["roleRef"]["name"] == "tekton-triggers-eventlistener-clusterroles"


def test_build_account_has_no_api_access_and_only_push_credentials(resources) -> None:
    build = accounts(resources)["sluice-build"]
    assert build["automountServiceAccountToken"] is False
    assert held(build) == {"sluice-registry-push"}
    assert all(s["name"] != "sluice-build" for b in bindings(resources) for s in b["subjects"])


def test_finalize_account_holds_nothing_and_calls_no_api(resources) -> None:
    """MLflow is reached in-cluster without credentials and git is only read: nothing to hold."""
    finalize = accounts(resources)["sluice-finalize"]
    assert held(finalize) == set() and finalize["automountServiceAccountToken"] is False
    assert all(s["name"] != "sluice-finalize" for b in bindings(resources) for s in b["subjects"])


def test_the_finalize_run_cannot_write_to_git_or_the_registry(resources) -> None:
    template = by_kind_name(resources, "TriggerTemplate", "sluice-finalize")
    run = template["spec"]["resourcetemplates"][0]["spec"]
    per_task = {s["pipelineTaskName"]: s["serviceAccountName"] for s in run["taskRunSpecs"]}
    assert run["taskRunTemplate"]["serviceAccountName"] == "sluice-finalize"
    assert per_task == {"report-success": "sluice-report", "report-failure": "sluice-report"}
    pipeline = by_kind_name(resources, "Pipeline", "sluice-finalize")
    used = {pt["taskRef"]["name"] for pt in pipeline["spec"]["tasks"]}
    assert used == {"git-clone", "finalize"}
    write_access = ("push-url", DEPLOY_KEY, "sluice-registry-push", "sluice-cosign-signing", "git push")
    for obj in (template, pipeline, by_kind_name(resources, "Task", "finalize")):
        assert [w for w in write_access if w in str(obj)] == [], obj["metadata"]["name"]


def test_pull_request_account_holds_nothing(resources) -> None:
    check = accounts(resources)["sluice-check"]
    assert held(check) == set() and check["automountServiceAccountToken"] is False


def test_only_api_callers_get_a_token(resources) -> None:
    with_token = {n for n, sa in accounts(resources).items() if sa.get("automountServiceAccountToken", True)}
    assert with_token == {"sluice-triggers", "sluice-train"}
    bound = {s["name"] for b in bindings(resources) for s in b["subjects"]}
    assert bound == with_token


def test_mountable_secrets_are_enforced_for_every_task_account(resources) -> None:
    for name, sa in accounts(resources).items():
        if name != "sluice-triggers":
            assert sa["metadata"]["annotations"]["kubernetes.io/enforce-mountable-secrets"] == "true", name


def _secrets_of(task: dict) -> set[str]:
    """Secret names a Task reads (env secretKeyRef, secret volumes), with param defaults resolved."""
    defaults = {p["name"]: p.get("default") for p in task["spec"].get("params", [])}

    def resolve(name: str) -> str:
        m = re.fullmatch(r"\$\(params\.([\w-]+)\)", name)
        return defaults[m.group(1)] if m else name

    names = {resolve(v["secret"]["secretName"]) for v in task["spec"].get("volumes", []) if "secret" in v}
    for step in task["spec"]["steps"]:
        for env in step.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                names.add(resolve(ref["name"]))
    return names


@pytest.mark.parametrize("template", ["sluice-deliver", "sluice-check", "sluice-finalize"])
def test_each_task_runs_under_an_account_that_holds_its_secrets(resources, template: str) -> None:
    run = by_kind_name(resources, "TriggerTemplate", template)["spec"]["resourcetemplates"][0]["spec"]
    default_sa = run["taskRunTemplate"]["serviceAccountName"]
    per_task = {s["pipelineTaskName"]: s["serviceAccountName"] for s in run.get("taskRunSpecs", [])}
    pipeline = by_kind_name(resources, "Pipeline", run["pipelineRef"]["name"])
    sas = accounts(resources)
    for pt in pipeline["spec"]["tasks"] + pipeline["spec"].get("finally", []):
        sa = per_task.get(pt["name"], default_sa)
        assert sa in sas, sa
        needed = _secrets_of(by_kind_name(resources, "Task", pt["taskRef"]["name"]))
        assert needed <= held(sas[sa]), f"{template}/{pt['name']} under {sa} needs {needed - held(sas[sa])}"


def test_signing_key_is_held_only_by_the_signing_account(resources) -> None:
    assert [n for n, sa in accounts(resources).items() if "sluice-cosign-signing" in held(sa)] == [
        "sluice-sign"
    ]


def test_only_buildah_is_privileged_and_everything_else_runs_as_non_root(resources) -> None:
    privileged = set()
    for task, step, spec in steps(resources):
        context = spec.get("securityContext", {})
        if context.get("privileged"):
            privileged.add(f"{task}/{step}")
            continue
        template = (
            by_kind_name(resources, "Task", task)["spec"].get("stepTemplate", {}).get("securityContext", {})
        )
        merged = {**template, **context}
        assert merged.get("runAsNonRoot") is True and merged.get("runAsUser", 0) != 0, f"{task}/{step}"
        assert merged.get("allowPrivilegeEscalation") is False, f"{task}/{step}"
        assert merged.get("capabilities", {}).get("drop") == ["ALL"], f"{task}/{step}"
    assert privileged == {"build-image/build-and-push"}
