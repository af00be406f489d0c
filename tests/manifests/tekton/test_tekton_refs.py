"""The Tekton cross-reference check: quiet on the real tekton/ folder, and loud on each kind of
broken reference (each test breaks one reference in a copy of the real resources)."""

from __future__ import annotations

import pytest

from sluice.lint.problems import Problem
from sluice.lint.tekton_refs import check_tekton_refs
from tests.manifests.tekton.resources import by_kind_name, mutable_copy, pipeline_task


def rules(problems: list[Problem]) -> set[str]:
    return {p.rule for p in problems}


def test_real_tekton_folder_has_no_broken_reference(resources) -> None:
    assert check_tekton_refs(resources) == []


def test_the_check_sees_every_kind_it_resolves(resources) -> None:
    kinds = {obj["kind"] for _p, _l, obj in resources}
    assert {"Task", "Pipeline", "TriggerTemplate", "TriggerBinding", "EventListener"} <= kinds


@pytest.fixture
def broken(resources):
    """A deep copy of the real resources to break one reference in."""
    return mutable_copy(resources)


def only(problems: list[Problem], rule: str) -> list[Problem]:
    found = [p for p in problems if p.rule == rule]
    assert found, f"expected a {rule} problem, got {[p.render() for p in problems]}"
    return found


def test_task_ref_to_an_undefined_task(broken) -> None:
    pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "lint")["taskRef"]["name"] = "lnt"
    problem = only(check_tekton_refs(broken), "tekton-task-ref")[0]
    assert "'lnt'" in problem.message
    assert problem.path == "tekton/pipelines/deliver.yaml" and problem.line == 1
    assert problem.render().startswith("tekton/pipelines/deliver.yaml:1: tekton-task-ref: ")


def test_finally_task_ref_is_resolved_too(broken) -> None:
    pipeline_task(by_kind_name(broken, "Pipeline", "sluice-check"), "report-failure")["taskRef"]["name"] = (
        "nope"
    )
    assert "'nope'" in only(check_tekton_refs(broken), "tekton-task-ref")[0].message


def test_param_the_task_does_not_declare(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "build-trainer")
    task["params"].append({"name": "dockerfil", "value": "x"})
    assert "'dockerfil'" in only(check_tekton_refs(broken), "tekton-unknown-param")[0].message


def test_required_param_not_passed(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "sign-serving")
    task["params"] = [p for p in task["params"] if p["name"] != "image-digest"]
    problems = check_tekton_refs(broken)
    assert "'image-digest'" in only(problems, "tekton-missing-param")[0].message
    assert rules(problems) == {"tekton-missing-param"}


def test_param_with_a_default_may_be_left_out(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "sign-serving")
    task["params"] = [p for p in task["params"] if p["name"] != "rekor-upload"]
    assert check_tekton_refs(broken) == []


def test_workspace_the_task_does_not_declare(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-check"), "lint")
    task["workspaces"].append({"name": "cache", "workspace": "shared"})
    assert "'cache'" in only(check_tekton_refs(broken), "tekton-unknown-workspace")[0].message


def test_required_workspace_not_bound(broken) -> None:
    pipeline_task(by_kind_name(broken, "Pipeline", "sluice-check"), "test")["workspaces"] = []
    assert "'source'" in only(check_tekton_refs(broken), "tekton-missing-workspace")[0].message


def test_binding_to_a_pipeline_workspace_that_does_not_exist(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-check"), "test")
    task["workspaces"][0]["workspace"] = "sharred"
    assert "'sharred'" in only(check_tekton_refs(broken), "tekton-undeclared-workspace")[0].message


@pytest.mark.parametrize(
    ("reference", "needle"),
    [
        ("$(tasks.build-trainer.results.IMAGE_DIGST)", "'IMAGE_DIGST'"),
        ("$(tasks.build-trainr.results.IMAGE_DIGEST)", "build-trainr"),
        ("$(tasks.build-trainer.results.IMAGE_DIGST[*])", "'IMAGE_DIGST'"),
        ("$(tasks.build-trainer.results.IMAGE_DIGST.key)", "'IMAGE_DIGST'"),
    ],
)
def test_result_reference_to_a_missing_task_or_result(broken, reference: str, needle: str) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "sign-trainer")
    task["params"][1]["value"] = reference
    assert needle in only(check_tekton_refs(broken), "tekton-result-ref")[0].message


def test_result_reference_to_a_finally_task_is_refused(broken) -> None:
    # A task can only read results of tasks in `tasks`, never of the finally block.
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "gate")
    task["params"][1]["value"] = "$(tasks.report-success.results.x)"
    only(check_tekton_refs(broken), "tekton-result-ref")


@pytest.mark.parametrize(
    "reference",
    [
        "$(params.modle-name)",
        "$(params.modle-name[*])",
        "$(params.modle-name.key)",
        '$(params["modle-name"])',
    ],
)
def test_undeclared_pipeline_param_in_every_form(broken, reference: str) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-deliver"), "gate")
    task["params"][0]["value"] = reference
    assert "modle-name" in only(check_tekton_refs(broken), "tekton-undeclared-param")[0].message


def test_undeclared_task_param_in_a_step(broken) -> None:
    task = by_kind_name(broken, "Task", "promote")
    task["spec"]["steps"][0]["env"].append({"name": "X", "value": "$(params.enviroment)"})
    problem = only(check_tekton_refs(broken), "tekton-undeclared-param")[0]
    assert "Task promote" in problem.message and "enviroment" in problem.message


def test_undeclared_task_param_in_a_volume(broken) -> None:
    by_kind_name(broken, "Task", "sign-image")["spec"]["volumes"][0]["secret"]["secretName"] = (
        "$(params.signing)"
    )
    only(check_tekton_refs(broken), "tekton-undeclared-param")


def test_result_written_but_not_declared(broken) -> None:
    by_kind_name(broken, "Task", "git-clone")["spec"]["results"].pop(0)  # commit
    assert "'commit'" in only(check_tekton_refs(broken), "tekton-undeclared-result")[0].message


def test_workspace_used_but_not_declared(broken) -> None:
    task = by_kind_name(broken, "Task", "gate")
    task["spec"]["workspaces"] = [w for w in task["spec"]["workspaces"] if w["name"] != "evidence"]
    problems = check_tekton_refs(broken)
    only(problems, "tekton-undeclared-workspace")
    # The pipeline still binds `evidence`, which the task no longer declares.
    only(problems, "tekton-unknown-workspace")


def test_run_after_an_unknown_task(broken) -> None:
    pipeline_task(by_kind_name(broken, "Pipeline", "sluice-check"), "test")["runAfter"] = ["lnt"]
    only(check_tekton_refs(broken), "tekton-pipeline-task-ref")


def test_trigger_template_placeholder_not_declared(broken) -> None:
    template = by_kind_name(broken, "TriggerTemplate", "sluice-check")
    template["spec"]["resourcetemplates"][0]["spec"]["params"][0]["value"] = "$(tt.params.git-url)"
    assert "git-url" in only(check_tekton_refs(broken), "tekton-undeclared-param")[0].message


def test_trigger_template_binds_a_workspace_the_pipeline_lacks(broken) -> None:
    run = by_kind_name(broken, "TriggerTemplate", "sluice-deliver")["spec"]["resourcetemplates"][0]
    run["spec"]["workspaces"][0]["name"] = "source"
    problems = check_tekton_refs(broken)
    assert "'source'" in only(problems, "tekton-unknown-workspace")[0].message
    assert "'shared'" in only(problems, "tekton-missing-workspace")[0].message


def test_trigger_template_leaves_out_a_required_pipeline_param(broken) -> None:
    run = by_kind_name(broken, "TriggerTemplate", "sluice-deliver")["spec"]["resourcetemplates"][0]
    run["spec"]["params"] = [p for p in run["spec"]["params"] if p["name"] != "push-url"]
    assert "'push-url'" in only(check_tekton_refs(broken), "tekton-missing-param")[0].message


def test_trigger_template_references_a_missing_pipeline(broken) -> None:
    run = by_kind_name(broken, "TriggerTemplate", "sluice-check")["spec"]["resourcetemplates"][0]
    run["spec"]["pipelineRef"]["name"] = "sluice-chek"
    only(check_tekton_refs(broken), "tekton-pipeline-ref")


def test_task_run_specs_for_a_task_the_pipeline_lacks(broken) -> None:
    run = by_kind_name(broken, "TriggerTemplate", "sluice-deliver")["spec"]["resourcetemplates"][0]
    run["spec"]["taskRunSpecs"][0]["pipelineTaskName"] = "sign-trainr"
    only(check_tekton_refs(broken), "tekton-pipeline-task-ref")


def test_event_listener_references_missing_binding_and_template(broken) -> None:
    listener = by_kind_name(broken, "EventListener", "sluice-github")
    listener["spec"]["triggers"][0]["bindings"][0]["ref"] = "github-pusj"
    listener["spec"]["triggers"][1]["template"]["ref"] = "sluice-chek"
    found = only(check_tekton_refs(broken), "tekton-trigger-ref")
    assert {"github-pusj" in p.message or "sluice-chek" in p.message for p in found} == {True}
    assert len(found) == 2


def test_binding_does_not_supply_a_required_template_param(broken) -> None:
    binding = by_kind_name(broken, "TriggerBinding", "github-pull-request")
    binding["spec"]["params"] = [p for p in binding["spec"]["params"] if p["name"] != "pr-number"]
    assert "'pr-number'" in only(check_tekton_refs(broken), "tekton-missing-param")[0].message


def test_finalize_pipeline_params_are_checked(broken) -> None:
    task = pipeline_task(by_kind_name(broken, "Pipeline", "sluice-finalize"), "finalize")
    task["params"] = [p for p in task["params"] if p["name"] != "before"]
    task["params"].append({"name": "befor", "value": "$(params.before)"})
    problems = check_tekton_refs(broken)
    assert "'before'" in only(problems, "tekton-missing-param")[0].message
    assert "'befor'" in only(problems, "tekton-unknown-param")[0].message


def test_finalize_trigger_binding_must_supply_the_range(broken) -> None:
    binding = by_kind_name(broken, "TriggerBinding", "github-push-range")
    binding["spec"]["params"] = [p for p in binding["spec"]["params"] if p["name"] != "git-before"]
    assert "'git-before'" in only(check_tekton_refs(broken), "tekton-missing-param")[0].message


def test_a_standalone_pipeline_run_is_checked() -> None:
    pipeline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {
            "params": [{"name": "a", "type": "string"}],
            "workspaces": [{"name": "w"}],
            "tasks": [
                {
                    "name": "inline",
                    "taskSpec": {
                        "params": [{"name": "b", "type": "string", "default": "x"}],
                        "steps": [
                            {"name": "s", "image": "i", "script": "echo $(params.a) $(params.b) $(params.c)"}
                        ],
                    },
                }
            ],
        },
    }
    run = {
        "apiVersion": "tekton.dev/v1",
        "kind": "PipelineRun",
        "metadata": {"generateName": "p-"},
        "spec": {"pipelineRef": {"name": "p"}, "params": [{"name": "z", "value": "1"}]},
    }
    problems = check_tekton_refs([("a.yaml", 1, pipeline), ("b.yaml", 3, run)])
    assert {(p.path, p.line, p.rule) for p in problems} == {
        ("a.yaml", 1, "tekton-undeclared-param"),  # $(params.c) inside the inline taskSpec
        ("b.yaml", 3, "tekton-unknown-param"),  # z
        ("b.yaml", 3, "tekton-missing-param"),  # a
        ("b.yaml", 3, "tekton-missing-workspace"),  # w
    }


def test_remote_and_non_tekton_documents_are_left_alone() -> None:
    pipeline = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Pipeline",
        "metadata": {"name": "p"},
        "spec": {"tasks": [{"name": "t", "taskRef": {"resolver": "hub", "params": []}}]},
    }
    other = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "$(params.q)"}}
    assert check_tekton_refs([("a.yaml", 1, pipeline), ("b.yaml", 1, other), ("c.yaml", 1, "text")]) == []
