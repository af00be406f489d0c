"""The machine-owned overlay file: deterministic bytes, atomic replacement, refusal of unpinned images,
and the GitHub pull-request request exactly as it would be sent (no network here)."""

from __future__ import annotations

import json

import pytest
import yaml

from sluice.errors import Refused, SluiceError
from sluice.promotion import github, overlay

IMAGE = "ghcr.io/acme/sluice-serving@sha256:" + "ab" * 32
SPEC = overlay.ModelVersionSpec(
    resource="credit-default",
    model="credit-default",
    version="7",
    model_uri="s3://mlflow-artifacts/1/models/m-0123/artifacts",
    image=IMAGE,
    evidence_sha256="cd" * 32,
    data_sha256="ef" * 32,
    mlflow_url="https://mlflow.example/#/models/credit-default/versions/7",
    evidence_url="https://mlflow.example/#/experiments/1/runs/r/artifacts/evidence/model-evidence.html",
)


def test_render_is_deterministic_and_round_trips():
    text = overlay.render(SPEC)
    assert text == overlay.render(SPEC)
    doc = yaml.safe_load(text)
    assert list(doc) == ["apiVersion", "kind", "metadata", "spec"]
    annotations = list(doc["metadata"]["annotations"])
    assert annotations == sorted(annotations)
    assert doc["metadata"]["labels"] == {"app.kubernetes.io/version": "7"}
    state = overlay.parse(text, "x")
    assert (state.version, state.image, state.model_uri, state.evidence_sha256) == (
        "7",
        IMAGE,
        SPEC.model_uri,
        SPEC.evidence_sha256,
    )
    assert state.identity() == SPEC.identity()
    assert "\n" not in doc["metadata"]["annotations"][overlay.ANN_LINK_EVIDENCE]  # never wrapped


def test_links_do_not_change_identity_but_the_version_does():
    relinked = overlay.ModelVersionSpec(**{**SPEC.__dict__, "mlflow_url": None, "evidence_url": None})
    assert overlay.parse(overlay.render(relinked), "x").identity() == SPEC.identity()
    newer = overlay.ModelVersionSpec(**{**SPEC.__dict__, "version": "8"})
    assert newer.identity() != SPEC.identity()


@pytest.mark.parametrize(
    "image", ["ghcr.io/acme/serving:1.0", "ghcr.io/acme/serving@sha256:abc", "ghcr.io/acme/serving"]
)
def test_unpinned_images_are_refused(image):
    with pytest.raises(Refused, match="not pinned by digest"):
        overlay.render(overlay.ModelVersionSpec(**{**SPEC.__dict__, "image": image}))


@pytest.mark.parametrize(
    ("check", "value"),
    [
        (overlay.check_model_name, "../etc"),
        (overlay.check_model_name, "Credit"),
        (overlay.check_version, "x"),
        (overlay.check_version, "0"),
        (overlay.check_env, "prod"),
    ],
)
def test_bad_names_versions_and_environments_are_refused(check, value):
    with pytest.raises(SluiceError):
        check(value)


def test_v_prefix_is_accepted():
    assert overlay.check_version("v12") == "12"


def test_broken_overlay_file_is_a_one_line_error():
    with pytest.raises(SluiceError, match="not valid YAML") as info:
        overlay.parse("kind: [unclosed", "apps/x/overlays/staging/model-version.yaml")
    assert "\n" not in str(info.value)


def test_github_pull_request_request_is_exactly_what_the_api_expects():
    pr = github.PullRequest("acme/gitops", "promote/credit-default/v7", "main", "promote(credit-default): v7",
                            "## body\n")  # fmt: skip
    request = github.build_request(pr, "t0ken")
    assert request.get_method() == "POST"
    assert request.full_url == "https://api.github.com/repos/acme/gitops/pulls"
    headers = {k.lower(): v for k, v in request.header_items()}
    assert headers["authorization"] == "Bearer t0ken"
    assert headers["accept"] == "application/vnd.github+json"
    assert headers["x-github-api-version"] == "2022-11-28"
    assert "t0ken" not in request.full_url
    assert json.loads(request.data) == {
        "title": "promote(credit-default): v7",
        "head": "promote/credit-default/v7",
        "base": "main",
        "body": "## body\n",
        "draft": False,
        "maintainer_can_modify": False,
    }
    enterprise = github.build_request(pr, "t", api_url="https://ghe.example/api/v3/")
    assert enterprise.full_url == "https://ghe.example/api/v3/repos/acme/gitops/pulls"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://github.com/acme/gitops.git", "acme/gitops"),
        ("git@github.com:acme/gitops.git", "acme/gitops"),
        ("ssh://git@github.com/acme/gitops", "acme/gitops"),
        ("https://gitlab.com/acme/gitops.git", None),
    ],
)
def test_github_repository_is_read_from_the_remote(url, expected):
    assert github.owner_repo_from_remote(url) == expected


def test_github_request_refuses_bad_input():
    pr = github.PullRequest("not a repo", "h", "main", "t", "b")
    with pytest.raises(SluiceError, match="owner/name"):
        github.build_request(pr, "t")
    with pytest.raises(SluiceError, match="must be https"):
        github.build_request(github.PullRequest("a/b", "h", "main", "t", "b"), "t", api_url="http://x")
    with pytest.raises(SluiceError, match="SLUICE_GIT_TOKEN"):
        github.build_request(github.PullRequest("a/b", "h", "main", "t", "b"), "")


def test_written_file_passes_the_repositorys_yamllint(tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    long_link = (
        "https://mlflow.internal.example.com/#/experiments/123/runs/"
        + "f" * 32
        + "/artifacts/evidence/x.html"
    )
    path = tmp_path / "model-version.yaml"
    path.write_text(overlay.render(overlay.ModelVersionSpec(**{**SPEC.__dict__, "evidence_url": long_link})))
    out = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(REPO_ROOT / ".yamllint.yaml"), str(path)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout
    assert long_link in path.read_text()
