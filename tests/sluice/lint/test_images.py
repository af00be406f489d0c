"""Digest pinning: image references in workloads, and FROM lines resolved as the builder does."""

from __future__ import annotations

import pytest

from sluice.lint.dockerfile import check_base_images, instructions
from sluice.lint.images import image_findings, is_pinned

DIGEST = "sha256:adc02660aaaa7e7b482a2689237c5fa88d5b2218aebfa003f6af8fa7c8113378"
PINNED = f"docker.io/library/python:3.11-bookworm@{DIGEST}"


@pytest.mark.parametrize(
    ("image", "pinned"),
    [
        (PINNED, True),
        (f"registry.local:5000/team/model@{DIGEST}", True),
        ("docker.io/library/python:3.11", False),
        ("python", False),
        (f"python@{DIGEST[:-1]}", False),  # 63 hex digits
        (f"python@{DIGEST.upper().replace('SHA256', 'sha256')}", False),  # digests are lower-case hex
        (f"python@sha512:{'a' * 128}", False),
    ],
)
def test_is_pinned(image, pinned):
    assert is_pinned(image) is pinned


def test_kserve_predictor_and_servingruntime_containers_are_checked():
    isvc = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "m"},
        "spec": {
            "predictor": {
                "containers": [{"name": "kserve-container", "image": "ghcr.io/x/model:v1"}],
                "sklearn": {"image": PINNED},
            }
        },
    }
    found = image_findings(isvc)
    assert [f.keys for f in found] == [("spec", "predictor", "containers", 0, "image")]


def test_admission_policies_hold_patterns_not_images():
    policy = {
        "apiVersion": "kyverno.io/v1",
        "kind": "ClusterPolicy",
        "metadata": {"name": "p"},
        "spec": {"rules": [{"validate": {"pattern": {"spec": {"containers": [{"image": "*@sha256:*"}]}}}}]},
    }
    assert image_findings(policy) == []


def test_tekton_param_without_default_is_left_to_the_caller():
    task = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": {"name": "t"},
        "spec": {"params": [{"name": "img"}], "steps": [{"name": "s", "image": "$(params.img)"}]},
    }
    assert image_findings(task) == []
    task["spec"]["params"][0]["default"] = "alpine:3.20"
    assert [f.keys for f in image_findings(task)] == [("spec", "steps", 0, "image")]


def test_dockerfile_instructions_join_continuations_and_skip_comments():
    text = "FROM --platform=$BUILDPLATFORM \\\n  base AS b\n# note\nRUN a \\\n# inner comment\n  && b\n"
    assert [(i.line, i.keyword, i.args) for i in instructions(text)] == [
        (1, "FROM", "--platform=$BUILDPLATFORM base AS b"),
        (4, "RUN", "a && b"),
    ]


def test_from_resolves_global_arg_defaults_and_stage_names():
    text = (
        f"ARG BASE={PINNED}\nARG TAG\nFROM ${{BASE}} AS build\nFROM build AS test\n"
        "FROM scratch\nCOPY --from=build /a /a\nCOPY --from=0 /a /b\n"
    )
    assert check_base_images(text, "Dockerfile") == []


def test_arg_without_default_cannot_be_verified_and_says_so():
    problems = check_base_images("ARG BASE\nFROM $BASE\n", "Dockerfile")
    assert [(p.line, p.severity) for p in problems] == [(2, "warning")]
    assert "ARG BASE without a default" in problems[0].message


def test_arg_declared_after_from_is_not_visible_to_from():
    """Only ARGs before the first FROM apply to FROM lines (Docker semantics)."""
    problems = check_base_images(f"FROM {PINNED}\nARG LATER=alpine:3.20\nFROM ${{LATER}}\n", "Dockerfile")
    assert [(p.line, p.severity) for p in problems] == [(3, "warning")]


def test_unpinned_copy_from_and_mount_from_are_errors():
    text = (
        f"FROM {PINNED}\nCOPY --from=alpine:3.20 /x /x\n"
        "RUN --mount=type=bind,from=busybox:1.36,target=/b true\n"
    )
    problems = check_base_images(text, "Dockerfile")
    assert [(p.line, p.severity) for p in problems] == [(2, "error"), (3, "error")]


def test_a_hadolint_crash_is_an_error_not_a_clean_result(tmp_path):
    """Empty output from a failed tool must never read as 'no findings'."""
    import subprocess

    from sluice.lint.dockerfile import hadolint_command, parse_hadolint

    missing = str(tmp_path / "Dockerfile.missing")
    command = hadolint_command([missing])
    if command is None:
        pytest.skip("hadolint not installed")
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    (problem,) = parse_hadolint(result, [missing])
    assert (problem.rule, problem.severity) == ("hadolint", "error")
    assert problem.message.startswith("hadolint failed:") and "does not exist" in problem.message
