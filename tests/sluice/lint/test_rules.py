"""Each lint rule fires on its broken fixture, at the right line, and stays quiet on the good ones."""

from __future__ import annotations

import pytest

from tests.sluice.lint.conftest import matching

# (fixture file, rule, line, a fragment the message must contain)
BROKEN = [
    ("broken/syntax.yaml", "yaml-syntax", 9, "flow sequence"),
    ("broken/duplicate-key.yaml", "yaml-duplicate-key", 9, "duplicate key 'mode' (first defined on line 8)"),
    ("broken/unknown-kind.yaml", "k8s-unknown-kind", 2, "kind Deploymnt is not defined in apps/v1"),
    (
        "broken/unknown-api-version.yaml",
        "k8s-unknown-api-version",
        1,
        "apps/v2 is not known for kind Deployment",
    ),
    ("broken/unknown-group.yaml", "k8s-unknown-kind", 1, "unknown kind Widget in widgets.example.com/v1"),
    ("broken/replicas-string.yaml", "k8s-schema", 6, "spec.replicas: expected integer, got string 'three'"),
    (
        "broken/inferenceservice-unknown-field.yaml",
        "crd-schema",
        10,
        "spec.predictor.model.storageURI: unknown field 'storageURI'",
    ),
    ("broken/contract-invalid.yaml", "sluice-schema", 1, "missing required field 'columns'"),
    ("broken/contract-invalid.yaml", "sluice-schema", 3, "'Not_A_Valid_Name' does not match"),
    ("broken/kustomization-typo/kustomization.yaml", "kustomize-structure", 3, "unknown field 'resource'"),
    ("broken/kustomization-typo/kustomization.yaml", "kustomize-render", 1, 'unknown field "resource"'),
    ("broken/render-fails/kustomization.yaml", "kustomize-render", 1, "does-not-exist.yaml"),
    (
        "broken/rendered-unpinned/kustomization.yaml",
        "image-digest",
        6,
        "rendered Deployment/web (from tests/sluice/lint/fixtures/broken/rendered-unpinned/deployment.yaml): "
        "image docker.io/library/python:3.12 is not pinned",
    ),
    (
        "broken/overlay-error/base/service.yaml",
        "k8s-schema",
        10,
        "spec.ports[0].protocl: unknown field 'protocl'",
    ),
    (
        "broken/overlay-error/overlay/kustomization.yaml",
        "k8s-schema",
        1,
        "spec.sessionAffinity: expected string, got integer 3",
    ),
    ("broken/tekton-unpinned.yaml", "image-digest", 11, "docker.io/library/busybox:1.36"),  # stepTemplate
    ("broken/tekton-unpinned.yaml", "image-digest", 14, "docker.io/library/alpine:3.20"),  # a step
    ("broken/tekton-unpinned.yaml", "image-digest", 19, "(default 'docker.io/library/python:3.11')"),
    (
        "broken/Dockerfile.unpinned",
        "image-digest",
        2,
        "FROM image docker.io/library/python:3.11-bookworm (from ${BASE}) is not pinned",
    ),
    ("broken/Dockerfile.unpinned", "image-digest", 5, "docker.io/library/debian:bookworm-slim"),
    ("broken/Dockerfile.unpinned", "image-digest", 7, "COPY --from image docker.io/library/busybox:1.36"),
    ("broken/Dockerfile.hadolint", "hadolint:DL3000", 3, "absolute WORKDIR"),
    # Katib's CRD is open; the closed OpenAPI schema and the webhook's trial-parameter rule are not.
    (
        "broken/katib-unknown-field.yaml",
        "katib-schema",
        14,
        "spec.parallelTrails: unknown field 'parallelTrails'",
    ),
    (
        "broken/katib-undeclared-parameter.yaml",
        "katib-template",
        31,
        "${trialParameters.minLeaf} is not declared in spec.trialTemplate.trialParameters",
    ),
]


@pytest.mark.parametrize(
    ("file", "rule", "line", "fragment"), BROKEN, ids=[f"{r}@{f}:{n}" for f, r, n, _ in BROKEN]
)
def test_rule_fires_on_broken_fixture(broken_report, file, rule, line, fragment):
    found = [p for p in matching(broken_report, file, rule) if p.line == line]
    assert len(found) == 1, f"expected one {rule} at {file}:{line}; got {matching(broken_report, file, rule)}"
    assert fragment in found[0].message
    assert found[0].severity == "error"


@pytest.mark.parametrize("rule", sorted({rule for _, rule, _, _ in BROKEN}))
def test_rule_quiet_on_good_fixtures(good_report, rule):
    assert [p for p in good_report.problems if p.rule == rule] == []


def test_good_fixtures_exercise_every_checker(good_report):
    """Quiet must mean 'checked and fine', not 'never looked': each checker saw real input."""
    assert good_report.errors == []
    stats = good_report.stats
    assert stats["kustomizations_rendered"] == 2
    assert stats["rendered_objects"] >= 4
    assert stats["dockerfiles"] == 1
    used = good_report.schemas_used
    assert "Deployment apps/v1" in used["kubernetes"]
    assert used["kserve/inferenceservices.yaml"] == ["InferenceService serving.kserve.io/v1beta1"]
    assert used["tekton-pipeline/task.yaml"] == ["Task tekton.dev/v1"]
    assert used["ml/data/contract.schema.json"] == ["DataContract sluice.dev/v1"]
    assert used["katib/swagger.json"] == ["Experiment kubeflow.org/v1beta1"]


def test_broken_fixtures_report_nothing_unexpected(broken_report):
    expected = {(f"tests/sluice/lint/fixtures/{f}", r, n) for f, r, n, _ in BROKEN}
    extra = [p for p in broken_report.errors if (p.path, p.rule, p.line) not in expected]
    # Fixtures not in BROKEN on purpose: the tekton ones are judged by tekton-lint / tekton_refs.
    extra = [p for p in extra if not p.path.startswith("tests/sluice/lint/fixtures/broken/tekton/")]
    assert extra == []


def test_an_error_is_reported_once_where_it_was_written(broken_report):
    """The base Service's typo is reported at its own line, not again for the overlay rendering it."""
    typo = [p for p in broken_report.problems if "protocl" in p.message]
    assert [(p.path, p.line) for p in typo] == [
        ("tests/sluice/lint/fixtures/broken/overlay-error/base/service.yaml", 10)
    ]


def test_strategic_merge_patches_are_not_validated_as_whole_objects(good_report):
    """replicas.yaml is a partial Deployment (no selector/template): only its rendered result counts."""
    assert not [p for p in good_report.problems if p.path.endswith("overlays/staging/replicas.yaml")]


def test_missing_crd_directory_is_an_error_not_a_pass(lint_run, tmp_path):
    missing = tmp_path / "no-crds-here"
    report = lint_run(
        "tests/sluice/lint/fixtures/good/inferenceservice.yaml",
        "tests/sluice/lint/fixtures/good/apps",
        crds=missing,
    )
    crd = [p for p in report.errors if p.rule == "crd-missing"]
    assert len(crd) == 1 and crd[0].path.endswith("inferenceservice.yaml")
    assert str(missing) in crd[0].message and "--crds" in crd[0].message
    # Built-in kinds are still validated without CRDs.
    assert "Deployment apps/v1" in report.schemas_used["kubernetes"]


def test_a_patch_linted_alone_is_still_recognised_as_a_patch(lint_run):
    report = lint_run("tests/sluice/lint/fixtures/good/apps/web/overlays/staging/replicas.yaml")
    assert report.problems == [] and report.stats["objects"] == 0
