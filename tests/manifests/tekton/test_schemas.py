"""Every Tekton resource validates against the upstream CRD schemas (v1 / triggers v1beta1) with
Kubernetes' semantics, and every built-in kind against Kubernetes' own schemas. The validator is
the lint engine's (sluice.lint.validate); these tests pin what it must catch for our folder."""

from __future__ import annotations

import copy

from sluice.lint.validate import validate_object
from tests.manifests.tekton.resources import by_kind_name


def _objects(resources):
    """Each document, plus each PipelineRun a TriggerTemplate would create (the Triggers schemas
    are fully open, so the embedded PipelineRun is where a mistake would otherwise hide)."""
    for path, line, obj in resources:
        yield f"{path}:{line}", obj
        if obj["kind"] == "TriggerTemplate":
            for i, embedded in enumerate(obj["spec"]["resourcetemplates"]):
                yield f"{path}:{line} resourcetemplates[{i}]", embedded


def test_api_versions_are_the_agreed_ones(resources) -> None:
    for _path, _line, obj in resources:
        group = obj["apiVersion"].split("/")[0]
        if group == "tekton.dev":
            assert obj["apiVersion"] == "tekton.dev/v1", obj["metadata"]["name"]
        elif group == "triggers.tekton.dev":
            assert obj["apiVersion"] == "triggers.tekton.dev/v1beta1", obj["metadata"]["name"]


def test_every_resource_validates(resources, schemas) -> None:
    failures = [
        f"{where}: {finding}"
        for where, obj in _objects(resources)
        for finding in validate_object(obj, schemas)
    ]
    assert failures == []


def test_the_validator_rejects_an_unknown_step_field(resources, schemas) -> None:
    task = copy.deepcopy(by_kind_name(resources, "Task", "lint"))
    task["spec"]["steps"][0]["scirpt"] = "#!/bin/sh"
    findings = validate_object(task, schemas)
    assert any("scirpt" in str(f) for f in findings), findings


def test_the_validator_rejects_a_v1beta1_only_field_in_v1(resources, schemas) -> None:
    # `resources` on a step was renamed computeResources in v1: a classic migration slip.
    task = copy.deepcopy(by_kind_name(resources, "Task", "build-image"))
    step = task["spec"]["steps"][0]
    step["resources"] = step.pop("computeResources")
    assert validate_object(task, schemas) != []


def test_the_validator_checks_the_embedded_pipeline_run(resources, schemas) -> None:
    template = copy.deepcopy(by_kind_name(resources, "TriggerTemplate", "sluice-deliver"))
    run = template["spec"]["resourcetemplates"][0]
    run["spec"]["serviceAccountName"] = "sluice-build"  # v1beta1 spelling, gone in v1
    assert validate_object(template, schemas) == []  # the Triggers schema keeps spec open...
    assert validate_object(run, schemas) != []  # ...so the PipelineRun is validated on its own


def test_the_validator_rejects_a_bad_core_object(resources, schemas) -> None:
    account = copy.deepcopy(by_kind_name(resources, "ServiceAccount", "sluice-build"))
    account["automountServiceAccountToken"] = "no"
    assert validate_object(account, schemas) != []
