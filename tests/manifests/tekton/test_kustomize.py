"""`kubectl kustomize tekton/` renders everything in the folder, nothing twice, and keeps the
namespaces each file names (there is deliberately no namespace transformer)."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.manifests.tekton.resources import TEKTON_DIR, tekton_resources


@pytest.fixture(scope="module")
def rendered() -> list[dict]:
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed")
    out = subprocess.run(
        ["kubectl", "kustomize", str(TEKTON_DIR)], capture_output=True, text=True, check=True, timeout=120
    )
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


def _key(obj: dict) -> tuple[str, str, str]:
    return obj["kind"], obj["metadata"].get("namespace", ""), obj["metadata"]["name"]


def test_every_file_in_the_folder_is_rendered(rendered) -> None:
    assert sorted(_key(o) for o in rendered) == sorted(_key(o) for _p, _l, o in tekton_resources())


def test_namespaces_are_explicit_and_kept(rendered) -> None:
    for obj in rendered:
        if obj["kind"] in {"Namespace", "ClusterRoleBinding"}:
            assert "namespace" not in obj["metadata"]
        elif (obj["kind"], obj["metadata"]["name"]) in {
            ("Role", "sluice-kfp-runner"),
            ("RoleBinding", "sluice-train-kfp-runner"),
        }:
            assert obj["metadata"]["namespace"] == "kubeflow"
        else:
            assert obj["metadata"]["namespace"] == "sluice-ci", _key(obj)


def test_every_object_carries_the_standard_labels(rendered) -> None:
    for obj in rendered:
        labels = obj["metadata"].get("labels", {})
        assert labels.get("app.kubernetes.io/part-of") == "sluice", _key(obj)
        assert "app.kubernetes.io/name" in labels, _key(obj)
