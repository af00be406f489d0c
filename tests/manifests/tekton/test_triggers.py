"""The webhook path end to end, without a cluster: the EventListener's CEL filters evaluated on
GitHub-shaped payloads (with cel-python), the TriggerBindings' JSONPath applied to them, and the
TriggerTemplate rendered into a PipelineRun that passes the cross-reference check."""

from __future__ import annotations

import copy
import json
import re

import pytest

from sluice.lint.tekton_refs import check_tekton_refs
from tests.manifests.tekton.resources import by_kind_name

SHA = "0123456789abcdef0123456789abcdef01234567"
BEFORE = "89abcdef0123456789abcdef0123456789abcdef"
PRODUCTION_OVERLAY = "apps/credit-default/overlays/production/model-version.yaml"
STAGING_OVERLAY = "apps/credit-default/overlays/staging/model-version.yaml"
REPO = {
    "full_name": "acme/sluice",
    "clone_url": "https://github.com/acme/sluice.git",
    "ssh_url": "git@github.com:acme/sluice.git",
}


def push(
    ref: str = "refs/heads/main",
    files: tuple[str, ...] = ("ml/train.py",),
    deleted: bool = False,
    created: bool = False,
    added: tuple[str, ...] = (),
    removed: tuple[str, ...] = (),
) -> dict:
    return {
        "ref": ref,
        "before": BEFORE,
        "after": SHA,
        "created": created,
        "deleted": deleted,
        "repository": REPO,
        "commits": [{"id": SHA, "added": list(added), "modified": list(files), "removed": list(removed)}],
    }


def pull_request(action: str) -> dict:
    return {
        "action": action,
        "number": 42,
        "repository": REPO,
        "pull_request": {
            "number": 42,
            "head": {"sha": SHA, "repo": {"clone_url": "https://github.com/fork/sluice.git"}},
        },
    }


def trigger(resources, name: str) -> dict:
    listener = by_kind_name(resources, "EventListener", "sluice-github")
    return next(t for t in listener["spec"]["triggers"] if t["name"] == name)


def interceptor(trig: dict, kind: str) -> dict:
    return next(i for i in trig["interceptors"] if i["ref"]["name"] == kind)


@pytest.fixture(scope="module")
def cel():
    return pytest.importorskip("celpy", reason="cel-python not installed (pip install cel-python)")


def passes(cel, trig: dict, body: dict) -> bool:
    expression = {p["name"]: p["value"] for p in interceptor(trig, "cel")["params"]}["filter"]
    env = cel.Environment()
    return bool(env.program(env.compile(expression)).evaluate({"body": cel.json_to_cel(body)}))


def test_github_interceptor_verifies_the_webhook_secret(resources) -> None:
    event_types = set()
    for trig in by_kind_name(resources, "EventListener", "sluice-github")["spec"]["triggers"]:
        github = interceptor(trig, "github")
        params = {p["name"]: p["value"] for p in github["params"]}
        assert params["secretRef"] == {"secretName": "github-webhook-secret", "secretKey": "secret"}
        event_types |= set(params["eventTypes"])
        assert trig["interceptors"][0] is github  # the signature is checked before anything reads the body
    assert event_types == {"push", "pull_request"}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (push(), True),
        (push(files=("apps/credit-default/overlays/staging/kustomization.yaml",)), False),
        (push(files=("apps/credit-default/overlays/staging/kustomization.yaml", "sluice/cli/run.py")), True),
        (push(ref="refs/heads/feature"), False),
        (push(ref="refs/tags/v1"), False),
        (push(deleted=True), False),
    ],
    ids=["code-on-main", "overlay-only", "overlay-and-code", "other-branch", "tag", "branch-deleted"],
)
def test_push_filter(cel, resources, body: dict, expected: bool) -> None:
    assert passes(cel, trigger(resources, "deliver-on-push-to-main"), body) is expected


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (push(files=(PRODUCTION_OVERLAY,)), True),
        (push(files=(), added=("apps/fraud/overlays/production/kustomization.yaml",)), True),
        (push(files=(PRODUCTION_OVERLAY, "sluice/cli/__init__.py")), True),
        (push(files=(STAGING_OVERLAY,)), False),
        (push(), False),
        (push(files=(), removed=(PRODUCTION_OVERLAY,)), False),
        (push(files=("apps/credit-default/overlays/production-canary/x.yaml",)), False),
        (push(files=("apps/team/credit-default/overlays/production/x.yaml",)), False),
        (push(ref="refs/heads/promote/credit-default/v7", files=(PRODUCTION_OVERLAY,)), False),
        (push(files=(PRODUCTION_OVERLAY,), created=True), False),
        (push(files=(PRODUCTION_OVERLAY,), deleted=True), False),
    ],
    ids=[
        "production-merge",
        "new-production-overlay",
        "production-and-code",
        "staging-only",
        "code-only",
        "overlay-removed-only",
        "similar-folder-name",
        "nested-folder",
        "review-branch",
        "branch-created",
        "branch-deleted",
    ],
)
def test_finalize_filter(cel, resources, body: dict, expected: bool) -> None:
    assert passes(cel, trigger(resources, "finalize-on-production-merge"), body) is expected


def test_a_merged_production_pull_request_finalizes_and_does_not_retrain(cel, resources) -> None:
    merged = push(files=(PRODUCTION_OVERLAY,))
    assert passes(cel, trigger(resources, "finalize-on-production-merge"), merged)
    assert not passes(cel, trigger(resources, "deliver-on-push-to-main"), merged)


@pytest.mark.parametrize(
    ("action", "expected"),
    [("opened", True), ("synchronize", True), ("reopened", True), ("closed", False), ("labeled", False)],
)
def test_pull_request_filter(cel, resources, action: str, expected: bool) -> None:
    assert passes(cel, trigger(resources, "check-on-pull-request"), pull_request(action)) is expected


def _jsonpath(body: dict, expression: str) -> str:
    value = body
    for key in expression.split("."):
        value = value[key]
    return value if isinstance(value, str) else json.dumps(value)


# What a cluster's operator puts in the TriggerBinding the repository only names (a test value).
CI_IMAGE = "registry.example.com/sluice/sluice-ci@sha256:" + "c0" * 32
CLUSTER_BINDINGS = {"sluice-ci-image": {"spec": {"params": [{"name": "ci-image", "value": CI_IMAGE}]}}}


def render(resources, trigger_name: str, body: dict) -> dict:
    """What Triggers would create: binding values from the body, then tt.params into the template."""
    trig = trigger(resources, trigger_name)
    values = {}
    for ref in trig["bindings"]:
        binding = CLUSTER_BINDINGS.get(ref["ref"]) or by_kind_name(resources, "TriggerBinding", ref["ref"])
        for param in binding["spec"]["params"]:
            values[param["name"]] = re.sub(
                r"\$\(body\.([\w.]+)\)", lambda m: _jsonpath(body, m.group(1)), param["value"]
            )
    template = by_kind_name(resources, "TriggerTemplate", trig["template"]["ref"])
    for param in template["spec"]["params"]:
        values.setdefault(param["name"], param.get("default"))
    assert None not in values.values(), values
    text = json.dumps(template["spec"]["resourcetemplates"][0])
    return json.loads(re.sub(r"\$\(tt\.params\.([\w-]+)\)", lambda m: values[m.group(1)], text))


def test_push_creates_a_deliver_run_for_the_pushed_commit(resources) -> None:
    run = render(resources, "deliver-on-push-to-main", push())
    params = {p["name"]: p["value"] for p in run["spec"]["params"]}
    assert run["spec"]["pipelineRef"]["name"] == "sluice-deliver"
    assert params["revision"] == SHA and params["push-url"] == REPO["ssh_url"]
    assert params["repo-full-name"] == "acme/sluice"
    assert "$(" not in json.dumps(run).replace("$(params.", "").replace("$(tasks.", "")
    assert check_tekton_refs([("rendered.yaml", 1, run), *copy.deepcopy(resources)]) == []


def test_pull_request_creates_a_check_run_of_the_fork_head(resources) -> None:
    run = render(resources, "check-on-pull-request", pull_request("synchronize"))
    params = {p["name"]: p["value"] for p in run["spec"]["params"]}
    assert run["spec"]["pipelineRef"]["name"] == "sluice-check"
    assert params["repo-url"] == "https://github.com/fork/sluice.git" and params["revision"] == SHA
    assert params["pr-number"] == "42" and run["metadata"]["generateName"] == "sluice-check-pr42-"
    assert params["ci-image"] == CI_IMAGE
    assert check_tekton_refs([("rendered.yaml", 1, run), *copy.deepcopy(resources)]) == []


def test_production_merge_creates_a_finalize_run_for_the_pushed_range(resources) -> None:
    run = render(resources, "finalize-on-production-merge", push(files=(PRODUCTION_OVERLAY,)))
    params = {p["name"]: p["value"] for p in run["spec"]["params"]}
    assert run["spec"]["pipelineRef"]["name"] == "sluice-finalize"
    assert params["revision"] == SHA and params["before"] == BEFORE
    assert params["repo-url"] == REPO["clone_url"] and params["repo-full-name"] == "acme/sluice"
    assert REPO["ssh_url"] not in json.dumps(run), "the finalize run never learns a push URL"
    assert params["ci-image"] == CI_IMAGE
    assert "$(" not in json.dumps(run).replace("$(params.", "").replace("$(tasks.", "")
    assert check_tekton_refs([("rendered.yaml", 1, run), *copy.deepcopy(resources)]) == []
