"""Fixtures for the Argo CD delivery checks: rendered manifests and upstream schemas.

Everything is read the way Argo CD reads it: `.argocd/` and every folder an Application points at
are rendered with the real `kubectl kustomize`, and validated against the upstream CRDs with the
lint engineer's validator (`sluice.lint.validate`), which applies Kubernetes' structural rules.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO_ROOT

ARGOCD_DIR = REPO_ROOT / ".argocd"
DATA = Path(__file__).resolve().parent / "data"


def kustomize(path: Path) -> list[dict[str, Any]]:
    """Render `path` with `kubectl kustomize`; a render error fails the test with kustomize's words."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl not installed: cannot render kustomizations")
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        pytest.fail(f"kubectl kustomize {path.relative_to(REPO_ROOT)} failed: {out.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


@pytest.fixture(scope="session")
def lua() -> str:
    """A Lua interpreter for the health scripts (Argo CD runs gopher-lua, Lua 5.1)."""
    for name in ("lua5.1", "luajit", "lua5.4", "lua5.3", "lua"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Lua interpreter (apt-get install lua5.4): the Argo CD health scripts are not exercised")


@pytest.fixture(scope="session")
def argocd_docs() -> list[dict[str, Any]]:
    return kustomize(ARGOCD_DIR)


@pytest.fixture(scope="session")
def applications(argocd_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in argocd_docs if d["kind"] == "Application"}


@pytest.fixture(scope="session")
def projects(argocd_docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in argocd_docs if d["kind"] == "AppProject"}
