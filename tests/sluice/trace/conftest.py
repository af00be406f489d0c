"""A traced world built from real parts: a version registered in the PostgreSQL-backed MLflow
server by the writers the pipeline uses (tags, gate attempts), a real data-gate run on a demo
snapshot, a real bare git remote holding the repository's own manifests, promoted by `promote()`
with a serving image signed (and attested) in the loopback docker-registry.
"""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

from sluice import tags
from sluice.cli import main as sluice_main
from sluice.digest import sha256_file
from sluice.environment import LOCK_FILE_NAME
from sluice.promotion.promote import PromoteOptions, promote
from sluice.promotion.signatures import key_trust, signature_verifier
from sluice.trace.provenance import PIPELINE_IR
from tests.conftest import REPO_ROOT, git
from tests.sluice.promotion.conftest import (  # noqa: F401 - signed_images: the session fixture
    GitOpsRepo,
    SignedImages,
    evidence_document,
    make_gitops_repo,
    signed_images,
)


@dataclass
class World:
    url: str  # MLflow server
    model: str
    version: str
    run_id: str
    gitops: GitOpsRepo
    data: Path  # the snapshot the data gate read
    code_commit: str
    evidence_artifact: str
    images: SignedImages
    key: Path  # the cosign public key, as a file
    base: Path


def _code_commit(gitops: GitOpsRepo, base: Path) -> str:
    """The code side of the repository: the lock and the compiled pipeline IR, one commit on main."""
    for rel in (LOCK_FILE_NAME, PIPELINE_IR):
        (gitops.user / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / rel, gitops.user / rel)
    git(gitops.user, "add", LOCK_FILE_NAME, PIPELINE_IR)
    git(gitops.user, "commit", "--quiet", "-m", "code: lock and pipeline IR")
    git(gitops.user, "push", "--quiet", "origin", "main")
    return git(gitops.user, "rev-parse", "HEAD")


def register_version(url: str, model: str, run_id: str, identity: dict[str, str], passed: bool = True):
    """A version of `run_id`'s model, its gate attempt kept on the run and its tags the pipeline's."""
    import tempfile

    from mlflow import MlflowClient

    from gates.evidence import write_evidence
    from gates.evidence.history import record_attempt
    from ml.components.register import version_tags
    from ml.registry.client import connect

    client = MlflowClient(url)
    with tempfile.TemporaryDirectory() as out:
        subject = {"model": model, "model_uri": f"runs:/{run_id}/model", **identity}
        path = write_evidence(evidence_document(model, passed, subject), out, "model-evidence")
        attempt = record_attempt(client, run_id, path)
    values = version_tags(
        run_key="rk-" + uuid.uuid4().hex,
        identity=identity,
        params={"candidate": "lr"},
        pipeline_run_id="",
        best={"model_type": "logistic_regression"},
        holdout={"accuracy": 0.8, "f1": 0.81, "roc_auc": 0.9},
        attempt=attempt,
    )
    values[tags.LOCK_SHA256] = sha256_file(REPO_ROOT / LOCK_FILE_NAME)
    mv = connect(url).register_model(f"runs:/{run_id}/model", model, tags=values)
    return str(mv.version), attempt


def _trained_run(url: str, model: str, base: Path, identity: dict[str, str], data_evidence: Path) -> str:
    import mlflow
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from gates.evidence.history import record_attempt
    from ml.registry.client import connect, experiment_id

    rng = np.random.RandomState(7)
    x = rng.rand(40, 3)
    fitted = LogisticRegression().fit(x, (x[:, 0] > 0.5).astype(int))
    mlf = connect(url)
    experiment = experiment_id(mlf, model, "")
    run_tags = {
        tags.RUN_KEY: "rk-" + uuid.uuid4().hex,
        tags.MODEL_NAME: model,
        **tags.identity_tags(identity),
    }
    with mlf.start_run(experiment_id=experiment, tags=run_tags) as run:
        mlflow.sklearn.log_model(
            fitted, name="model", pip_requirements=["scikit-learn"], serialization_format="cloudpickle"
        )
        record_attempt(mlf.MlflowClient(), run.info.run_id, data_evidence)
    return run.info.run_id


def build_world(url: str, images: SignedImages, base: Path) -> World:
    """v1 of a fresh model, gated and promoted to staging on the remote's main with a signed image.

    A plain function, so benchmarks/bench_trace.py builds the same world outside pytest."""
    import mlflow

    from gates.data_gate import run_data_gate
    from ml.data.demo import write_demo

    model = f"tr-{uuid.uuid4().hex[:6]}"
    gitops = make_gitops_repo(base, [model])
    code_commit = _code_commit(gitops, base)
    demo = write_demo(base / "data", reference_rows=1500, current_rows=1500)
    data_evidence = run_data_gate(demo.contract, demo.reference, demo.current, None, base / "data-gate")
    if not data_evidence["passed"]:
        raise RuntimeError(data_evidence["summary"])
    identity = {
        k: data_evidence["subject"][k] for k in ("data_sha256", "reference_sha256", "contract_sha256")
    }
    identity.update(code_commit=code_commit, code_version="0.1.0")
    previous = mlflow.get_tracking_uri()
    try:
        run_id = _trained_run(url, model, base, identity, base / "data-gate" / "data-evidence.json")
        version, attempt = register_version(url, model, run_id, identity)
        result = promote(
            gitops.user,
            PromoteOptions(model=model, version=version, env="staging", image=images.signed),
            tracking_uri=url,
            download_dir=base / "downloads",
            verify=signature_verifier("staging", key_trust(images.key_pem), allow_insecure_loopback=True),
        )
        if not (result.changed and result.pushed):
            raise RuntimeError(f"the world's promotion did not happen: {result.message}")
    finally:
        mlflow.set_tracking_uri(previous)
    key = base / "cosign.pub"
    key.write_bytes(images.key_pem)
    return World(
        url=url,
        model=model,
        version=version,
        run_id=run_id,
        gitops=gitops,
        data=demo.current,
        code_commit=code_commit,
        evidence_artifact=attempt.artifact,
        images=images,
        key=key,
        base=base,
    )


@pytest.fixture(scope="session")
def world(mlflow_server: str, signed_images, tmp_path_factory: pytest.TempPathFactory) -> World:  # noqa: F811
    return build_world(mlflow_server, signed_images, tmp_path_factory.mktemp("trace-world"))


@pytest.fixture
def run_trace(world: World, capsys: pytest.CaptureFixture):
    """`sluice trace ARGS --repo <user clone> --tracking-uri <server> --key <pub>` in-process."""

    def run(*args: str, key: bool = True, tracking_uri: str | None = None) -> tuple[int, str, str]:
        capsys.readouterr()
        argv = [
            "trace",
            *args,
            "--repo",
            str(world.gitops.user),
            "--tracking-uri",
            tracking_uri or world.url,
            "--allow-insecure-loopback",
        ]
        if key:
            argv += ["--key", str(world.key)]
        code = sluice_main(argv)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run
