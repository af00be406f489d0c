"""Promotion fixtures: model versions in the real MLflow server, real git remotes, signed images.

Model names are unique per session (the MLflow server is shared with other test areas), and each
test repository is this repository's own `apps/` and `clusters/` with `credit-default` renamed to
those models, so the tests promote into the real manifests.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, git

DEMO = "credit-default"


@dataclass
class Version:
    number: str
    run_id: str
    evidence_sha256: str | None = None


@dataclass
class Registry:
    """What the session registered: model A has several versions, model B one."""

    url: str
    a: str
    b: str
    versions: dict[str, dict[str, Version]] = field(default_factory=dict)

    def v(self, model: str, label: str) -> str:
        return self.versions[model][label].number


def evidence_document(model: str, passed: bool = True, subject: dict | None = None) -> dict:
    """Model evidence built and validated by the gates' own evidence module (`subject` replaces
    the default one: what the gate says it judged)."""
    from gates.evidence import finalize, new_evidence, validate_evidence

    f1 = 0.81 if passed else 0.41
    check = {
        "name": "quality.f1",
        "group": "quality",
        "observed": f1,
        "threshold": 0.7,
        "comparator": ">=",
        "passed": passed,
        "reason": f"f1 {f1} vs minimum 0.7",
        "blocking": True,
        "skipped": False,
    }
    doc = new_evidence(
        "model",
        [check],
        subject or {"model": model, "data_sha256": "ab" * 32, "code_commit": "0" * 40},
        extra={
            "policy": {"sources": [{"path": "policy.yaml", "sha256": "cd" * 32}], "values": {"min_f1": 0.7}},
            "metrics": {"f1": f1},
        },
    )
    finalize(doc)
    validate_evidence(doc)
    return doc


def _register(
    client, mlflow, name: str, evidence: dict | None, passed_tag: str | None, tamper: bool
) -> Version:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.RandomState(7)
    x = rng.rand(40, 3)
    y = (x[:, 0] + 0.1 * rng.rand(40) > 0.5).astype(int)
    model = LogisticRegression().fit(x, y)
    with mlflow.start_run() as run:
        info = mlflow.sklearn.log_model(
            model,
            name="model",
            registered_model_name=name,
            pip_requirements=["scikit-learn"],
            serialization_format="cloudpickle",
        )
        digest = None
        if evidence is not None:
            from gates.evidence import write_evidence

            with tempfile.TemporaryDirectory() as out:
                path = write_evidence(evidence, out, "model-evidence")  # .json, .md, .html
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                mlflow.log_artifacts(out, "evidence")
    number = str(info.registered_model_version)
    tags = {"sluice.data_sha256": "ab" * 32}
    if passed_tag is not None:
        tags["sluice.evidence_passed"] = passed_tag
    if digest is not None:
        tags["sluice.evidence_sha256"] = ("0" * 64) if tamper else digest
    for key, value in tags.items():
        client.set_model_version_tag(name, number, key, value)
    return Version(number, run.info.run_id, digest)


@pytest.fixture(scope="session")
def registry(mlflow_server: str) -> Iterator[Registry]:
    import mlflow
    from mlflow import MlflowClient

    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    mlflow.set_experiment(f"promotion-tests-{uuid.uuid4().hex[:6]}")
    client = MlflowClient(mlflow_server)
    tag = uuid.uuid4().hex[:6]
    reg = Registry(url=mlflow_server, a=f"pa-{tag}", b=f"pb-{tag}")
    try:
        a = reg.versions.setdefault(reg.a, {})
        for label in ("good1", "good2", "good3"):
            a[label] = _register(client, mlflow, reg.a, evidence_document(reg.a), "true", False)
        a["failed"] = _register(client, mlflow, reg.a, evidence_document(reg.a, passed=False), "false", False)
        a["none"] = _register(client, mlflow, reg.a, None, None, False)
        a["tampered"] = _register(client, mlflow, reg.a, evidence_document(reg.a), "true", True)
        reg.versions[reg.b] = {
            "good1": _register(client, mlflow, reg.b, evidence_document(reg.b), "true", False)
        }
        yield reg
    finally:
        mlflow.set_tracking_uri(previous)


# --- git -----------------------------------------------------------------------------------------


@dataclass
class GitOpsRepo:
    remote: Path  # bare repository playing GitHub
    user: Path  # the user's clone, which promotion must never disturb

    def remote_file(self, path: str, ref: str = "main") -> str | None:
        out = subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=self.remote, capture_output=True, text=True
        )
        return out.stdout if out.returncode == 0 else None

    def remote_sha(self, ref: str = "main") -> str | None:
        out = subprocess.run(
            ["git", "rev-parse", "--verify", "--quiet", ref], cwd=self.remote, capture_output=True, text=True
        )
        return out.stdout.strip() or None

    def remote_log(self, ref: str = "main") -> list[str]:
        return git(self.remote, "log", "--format=%s", ref).splitlines()

    def user_snapshot(self) -> tuple[str, str, str, str]:
        """HEAD, current branch, porcelain status and local branches: what must not change."""
        return (
            git(self.user, "rev-parse", "HEAD"),
            git(self.user, "symbolic-ref", "--short", "HEAD"),
            git(self.user, "status", "--porcelain", "--untracked-files=all"),
            git(self.user, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads"),
        )


def _copy_renamed(src: Path, dst: Path, renames: dict[str, str]) -> None:
    for path in sorted(src.rglob("*")):
        if path.is_dir():
            continue
        rel = path.relative_to(src).as_posix()
        for old, new in renames.items():
            rel = rel.replace(old, new)
        text = path.read_text()
        for old, new in renames.items():
            text = text.replace(old, new)
        target = dst / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def make_gitops_repo(base: Path, models: list[str]) -> GitOpsRepo:
    """A bare remote seeded with the real apps/ and clusters/ (credit-default -> models[0]),
    plus an app per further model, and a user clone of it."""
    seed = base / "seed"
    seed.mkdir()
    git(seed, "init", "--quiet", "-b", "main")
    for app in (REPO_ROOT / "apps").iterdir():  # the shared apps the clusters include (mlflow, feature-store)
        if app.is_dir() and not (app / "overlays").is_dir():
            shutil.copytree(app, seed / "apps" / app.name)
    _copy_renamed(REPO_ROOT / "clusters", seed / "clusters", {DEMO: models[0]})
    for model in models:
        _copy_renamed(REPO_ROOT / "apps" / DEMO, seed / "apps" / model, {DEMO: model})
    (seed / "README.md").write_text("gitops test repository\n")
    git(seed, "add", "-A")
    git(seed, "commit", "--quiet", "-m", "seed")
    remote = base / "remote.git"
    git(base, "init", "--quiet", "--bare", "-b", "main", str(remote))
    git(seed, "push", "--quiet", str(remote), "main:main")
    user = base / "user"
    git(base, "clone", "--quiet", str(remote), str(user))
    return GitOpsRepo(remote=remote, user=user)


@pytest.fixture
def gitops(tmp_path: Path, registry: Registry) -> GitOpsRepo:
    return make_gitops_repo(tmp_path, [registry.a, registry.b])


# --- signed images in a real registry ----------------------------------------------------------


@dataclass
class SignedImages:
    key_pem: bytes
    signed: str  # signed, with a passing evidence attestation
    signed_only: str  # signed, no attestation
    unsigned: str


def _push_image(client, repository: str, tag: str, content: bytes) -> str:
    from sluice.supply_chain.constants import OCI_CONFIG, OCI_MANIFEST

    config = json.dumps(
        {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": client.put_blob(repository, config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": client.put_blob(repository, content),
                    "size": len(content),
                }
            ],
        }
    ).encode()
    return client.put_manifest(repository, tag, manifest, OCI_MANIFEST)


def make_signed_images(oci_registry: str) -> SignedImages:
    """Three images pushed to the registry: signed and attested, signed only, unsigned (fresh key)."""
    from cryptography.hazmat.primitives.asymmetric import ec

    from sluice.supply_chain.constants import PREDICATE_TYPE
    from sluice.supply_chain.keys import public_key_pem
    from sluice.supply_chain.oci import RegistryClient
    from sluice.supply_chain.sign import attest_image, sign_image

    key = ec.generate_private_key(ec.SECP256R1())
    client = RegistryClient(oci_registry, allow_insecure_loopback=True)
    refs = {}
    for name in ("signed", "signed-only", "unsigned"):
        digest = _push_image(client, "sluice/serving", name, f"layer {name}".encode())
        refs[name] = f"{oci_registry}/sluice/serving@{digest}"
    for name in ("signed", "signed-only"):
        sign_image(refs[name], key, allow_insecure_loopback=True)
    attest_image(refs["signed"], key, evidence_document("any"), PREDICATE_TYPE, allow_insecure_loopback=True)
    return SignedImages(public_key_pem(key), refs["signed"], refs["signed-only"], refs["unsigned"])


@pytest.fixture(scope="session")
def signed_images(oci_registry: str) -> SignedImages:
    pytest.importorskip("sluice.supply_chain.sign")
    return make_signed_images(oci_registry)
