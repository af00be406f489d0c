"""`sluice submit --wait --version-file`: argument handling, and the wait and version lookup.

The KFP API is NOT exercised here (no cluster on this machine): `submit` takes the client
through a `connect` parameter and these tests pass a small stand-in with the two methods
`sluice submit` calls (`create_run_from_pipeline_package`, `wait_for_run_completion`). What the
pipeline writes into MLflow and how a finished run is found there is real: the tags are written
by the pipeline's own register/record-rejection steps into the real MLflow server (PostgreSQL)
of the test session, and read back through its REST API.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from gates.data_gate import run_data_gate
from ml.components.register import record_rejection, register_challenger
from ml.registry import pipeline_runs
from ml.runners.cluster import SubmitRequest, submit
from sluice import cli
from sluice.errors import SluiceError

IMAGE = "registry.example.com/sluice/trainer@sha256:" + "ab" * 32
TRAIN_TASK = Path(__file__).resolve().parents[2] / "tekton" / "tasks" / "train.yaml"


def _cli_args(demo_slice, *extra):
    return [
        "submit",
        "--host",
        "https://kfp.example.com",
        "--trainer-image",
        IMAGE,
        "--tracking-uri",
        "http://mlflow.mlflow.svc:5000",
        "--data",
        str(demo_slice.current),
        "--contract",
        str(demo_slice.contract),
        *[str(x) for x in extra],
    ]


def _one_error(result, fragment):
    assert result.code == 2, result.out + result.err
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("sluice: error: ") and fragment in result.err_lines[0]


# ------------------------------------------------------------------------ argument handling
def test_version_file_needs_wait(sluice, demo_slice, tmp_path):
    _one_error(
        sluice(*_cli_args(demo_slice, "--version-file", tmp_path / "v")), "--version-file needs --wait"
    )


def test_wait_cannot_be_a_dry_run(sluice, demo_slice):
    _one_error(
        sluice(*_cli_args(demo_slice, "--wait", "--dry-run")), "--wait cannot be combined with --dry-run"
    )


def test_timeout_must_be_positive(sluice, demo_slice):
    _one_error(sluice(*_cli_args(demo_slice, "--wait", "--timeout", "0")), "--timeout must be a positive")


def test_version_file_directory_must_exist(sluice, demo_slice, tmp_path):
    result = sluice(*_cli_args(demo_slice, "--wait", "--version-file", tmp_path / "nope" / "v"))
    _one_error(result, f"--version-file directory does not exist: {tmp_path / 'nope'}")


def test_the_tekton_train_task_command_line_parses(tmp_path):
    """The flags tekton/tasks/train.yaml passes are the flags `sluice submit` takes."""
    script = yaml.safe_load(TRAIN_TASK.read_text())["spec"]["steps"][0]["script"]
    command = re.search(r'exec sluice (submit .*?)"\$@"', script.replace("\\\n", " "), re.S)
    assert command, "sluice submit command line not found in the train task"
    values = {"${KFP_HOST}": "https://kfp:8888", "${TRAINER_IMAGE}": IMAGE, "${image_lock}": "ab" * 32}
    words = [values.get(w, w) for w in shlex.split(command.group(1))]
    args = cli.build_parser("submit").parse_args(words)
    assert args.func.__module__ == "sluice.cli.submit" and args.func.__name__ == "run_submit"
    assert args.wait is True
    assert args.version_file == "$(results.model-version.path)"
    assert (args.host, args.trainer_image, args.lock_sha256) == ("https://kfp:8888", IMAGE, "ab" * 32)
    assert args.tracking_uri == "${MLFLOW_TRACKING_URI}" and args.data == "${DATA_FILE}"


# ------------------------------------------------------------------------ the wait and lookup
class FakeKfp:
    """Stands in for `kfp.Client`: records the submission, answers the wait with `final`."""

    def __init__(self, final=None, raises: Exception | None = None) -> None:
        self.run_id = str(uuid.uuid4())
        self.final = final or SimpleNamespace(state="SUCCEEDED", error=None)
        self.raises = raises
        self.submitted: dict = {}
        self.waited: list = []

    def create_run_from_pipeline_package(self, package, arguments, run_name, experiment_name, enable_caching):
        self.submitted = {"package": package, "arguments": arguments, "experiment": experiment_name}
        return SimpleNamespace(run_id=self.run_id)

    def wait_for_run_completion(self, run_id, timeout, sleep_duration=5):
        self.waited.append((run_id, timeout))
        if self.raises is not None:
            raise self.raises
        return self.final


@pytest.fixture(scope="module")
def model_name() -> str:
    """Its own registered model on the shared server, so other tests' version counts stay theirs."""
    return f"submit-wait-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def contract(model_name, demo_slice, tmp_path_factory) -> Path:
    doc = yaml.safe_load(demo_slice.contract.read_text())
    doc["name"] = model_name
    path = tmp_path_factory.mktemp("submit-contract") / "contract.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def mlflow_at(mlflow_server, monkeypatch):
    """The pipeline steps point MLflow's process-wide tracking URI (and $MLFLOW_TRACKING_URI) at
    the server; put both back afterwards so later in-process `sluice run`s use their own homes."""
    from mlflow.tracking._tracking_service import utils as tracking_utils

    monkeypatch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", mlflow_server)
    return mlflow_server


def _evidence(tmp_path: Path, passed: bool) -> Path:
    """A model gate's evidence directory, written by the gates' own evidence module."""
    from gates.checks.result import make_check
    from gates.evidence import new_evidence, write_evidence

    folder = tmp_path / f"evidence-{uuid.uuid4().hex[:6]}"
    check = make_check(
        "quality.f1", "quality", 0.41 if not passed else 0.7, 0.6, ">=",
        "f1 0.41 below 0.6" if not passed else "ok",
    )
    policy = {"sources": [{"path": "policy.yaml", "sha256": "cd" * 32}], "values": {}}
    doc = new_evidence("model", [check], {"code_commit": "0" * 40}, extra={"policy": policy, "metrics": {}})
    write_evidence(doc, folder, "model-evidence")
    return folder


def _logged_run(server: str, model_name: str, tmp_path: Path) -> str:
    """An MLflow run holding a model directory, as the pipeline's log step leaves it."""
    from mlflow import MlflowClient

    client = MlflowClient(server)
    experiment = client.get_experiment_by_name(model_name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(model_name)
    run = client.create_run(experiment_id)
    model_dir = tmp_path / f"model-{uuid.uuid4().hex[:6]}"
    model_dir.mkdir()
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    client.log_artifacts(run.info.run_id, str(model_dir), "model")
    client.set_terminated(run.info.run_id)
    return run.info.run_id


def _register(server, model_name, run_id, run_key, evidence, pipeline_run_id) -> tuple[str, bool]:
    return register_challenger(
        tracking_uri=server,
        model_name=model_name,
        run_id=run_id,
        run_key=run_key,
        evidence_dir=str(evidence),
        pipeline_run_id=pipeline_run_id,
        best={"name": "logistic_regression", "model_type": "logistic_regression", "params": {"C": 1.0}},
        holdout_metrics={"accuracy": 0.8, "f1": 0.6, "roc_auc": 0.9},
        identity={
            "data_sha256": "d" * 64,
            "reference_sha256": "r" * 64,
            "contract_sha256": "c" * 64,
            "code_commit": "0" * 40,
            "code_version": "v" * 64,
        },
        split_params={"seed": 1, "validation_fraction": 0.2, "holdout_fraction": 0.2},
    )


def _submit(demo_slice, contract, server, kfp, tmp_path, *, version_file: Path | None = None):
    ns = SubmitRequest(
        host="https://kfp.example.com",
        trainer_image=IMAGE,
        tracking_uri=server,
        data=str(demo_slice.current),
        contract=str(contract),
        reference=None,
        experiment=None,
        package_out=None,
        dry_run=False,
        wait=True,
        timeout=120.0,
        version_file=str(version_file) if version_file else None,
    )
    return submit(ns, connect=lambda host: kfp)


def test_a_run_that_registered_writes_its_version_number(
    mlflow_at, model_name, contract, demo_slice, tmp_path, capsys
):
    kfp = FakeKfp()
    run_id = _logged_run(mlflow_at, model_name, tmp_path)
    version, reused = _register(mlflow_at, model_name, run_id, "key-a", _evidence(tmp_path, True), kfp.run_id)
    assert not reused
    target = tmp_path / "model-version"
    assert _submit(demo_slice, contract, mlflow_at, kfp, tmp_path, version_file=target) == 0
    assert target.read_bytes() == version.encode()  # the number, no newline
    assert kfp.waited == [(kfp.run_id, 120.0)]
    assert kfp.submitted["arguments"]["model_name"] == model_name
    assert f"run {kfp.run_id} registered {model_name} version {version}" in capsys.readouterr().out

    # The same run key again (a re-run of the same commit): the version is reused, and the new
    # KFP run finds it through its own marker.
    again = FakeKfp()
    assert _register(mlflow_at, model_name, run_id, "key-a", _evidence(tmp_path, True), again.run_id) == (
        version,
        True,
    )
    target.unlink()
    assert _submit(demo_slice, contract, mlflow_at, again, tmp_path, version_file=target) == 0
    assert target.read_text() == version
    assert "reused" in capsys.readouterr().out


def test_a_registered_version_carries_the_lock_and_trainer_image_it_ran_in(
    mlflow_at, model_name, tmp_path, monkeypatch
):
    """What the KFP task environment says (the image's lock file, the image submit compiled for)
    becomes tags of the version; the lock only because every pin in it is what is installed."""
    from importlib.metadata import version as installed

    from mlflow import MlflowClient

    from sluice import tags

    lock = tmp_path / "requirements.lock"
    lock.write_text(
        "# a lock this environment was installed from\n"
        f"pyyaml=={installed('PyYAML')} ; sys_platform == 'linux' \\\n    --hash=sha256:{'0' * 64}\n"
        f"numpy=={installed('numpy')} \\\n    --hash=sha256:{'1' * 64}\n"
        "pywin32==306 ; sys_platform == 'win32' \\\n    --hash=sha256:" + "2" * 64 + "\n"
    )
    monkeypatch.setenv("SLUICE_LOCK_FILE", str(lock))
    monkeypatch.setenv("SLUICE_TRAINER_IMAGE", IMAGE)
    run_id = _logged_run(mlflow_at, model_name, tmp_path)
    version, _ = _register(mlflow_at, model_name, run_id, "key-env", _evidence(tmp_path, True), "kfp-env")
    got = MlflowClient(mlflow_at).get_model_version(model_name, version).tags
    assert got[tags.LOCK_SHA256] == hashlib.sha256(lock.read_bytes()).hexdigest()
    assert got[tags.TRAINER_IMAGE] == IMAGE


def test_an_environment_that_differs_from_its_lock_records_no_lock(tmp_path, monkeypatch):
    from sluice import tags
    from sluice.environment import environment_tags

    lock = tmp_path / "requirements.lock"
    lock.write_text("numpy==0.0.1 \\\n    --hash=sha256:" + "1" * 64 + "\n")
    monkeypatch.setenv("SLUICE_TRAINER_IMAGE", "registry.example.com/sluice/trainer:latest")  # a tag
    assert environment_tags(lock) == {}
    monkeypatch.setenv("SLUICE_TRAINER_IMAGE", IMAGE)
    assert environment_tags(lock) == {tags.TRAINER_IMAGE: IMAGE}


def test_a_run_the_model_gate_refused_says_why_and_writes_nothing(
    mlflow_at, model_name, contract, demo_slice, tmp_path, capsys
):
    kfp = FakeKfp()
    run_id = _logged_run(mlflow_at, model_name, tmp_path)
    record_rejection(
        tracking_uri=mlflow_at,
        run_id=run_id,
        evidence_dir=str(_evidence(tmp_path, False)),
        pipeline_run_id=kfp.run_id,
    )
    target = tmp_path / "model-version"
    assert _submit(demo_slice, contract, mlflow_at, kfp, tmp_path, version_file=target) == 1
    assert not target.exists()
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert err == [
        f"sluice: run {kfp.run_id} registered nothing: model gate failed: quality.f1: f1 0.41 below 0.6 "
        f"(MLflow run {run_id})"
    ]


def test_a_run_whose_data_gate_refused_the_data_says_why(
    mlflow_at, model_name, contract, demo_slice, tmp_path, capsys
):
    from ml.components.data_record import record_data_gate

    kfp = FakeKfp()
    evidence = tmp_path / "data-evidence"
    policy = tmp_path / "strict.yaml"
    policy.write_text(
        "apiVersion: sluice.dev/v1\nkind: GatePolicy\nname: strict\ndata:\n  volume:\n    min_rows: 100000\n"
    )
    run_data_gate(contract, demo_slice.reference, demo_slice.current, policy, evidence)
    mlflow_run = record_data_gate(
        tracking_uri=mlflow_at, artifact_root="", model_name=model_name, run_key="key-blocked",
        evidence_dir=str(evidence), identity={"data_sha256": "d" * 64}, pipeline_run_id=kfp.run_id,
    )
    assert _submit(demo_slice, contract, mlflow_at, kfp, tmp_path) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sluice: run {kfp.run_id} registered nothing: data gate failed: volume.min_rows:")
    assert err.endswith(f"(MLflow run {mlflow_run})")


def test_a_run_that_left_nothing_in_mlflow_stopped_before_the_model_gate(
    mlflow_at, model_name, contract, demo_slice, tmp_path, capsys
):
    kfp = FakeKfp()
    target = tmp_path / "model-version"
    assert _submit(demo_slice, contract, mlflow_at, kfp, tmp_path, version_file=target) == 1
    assert not target.exists()
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"sluice: run {kfp.run_id} registered nothing:")
    assert "stopped before its gates" in err


def test_a_failed_run_exits_1_with_the_kfp_error(mlflow_at, contract, demo_slice, tmp_path, capsys):
    failed = SimpleNamespace(
        state="FAILED", error=SimpleNamespace(message="task train-and-evaluate OOMKilled\nmore")
    )
    kfp = FakeKfp(final=failed)
    target = tmp_path / "model-version"
    assert _submit(demo_slice, contract, mlflow_at, kfp, tmp_path, version_file=target) == 1
    assert not target.exists()
    assert (
        capsys.readouterr().err.strip()
        == f"sluice: KFP run {kfp.run_id} ended FAILED: task train-and-evaluate OOMKilled"
    )


def test_a_run_that_does_not_finish_in_time_is_an_error(mlflow_at, contract, demo_slice, tmp_path):
    kfp = FakeKfp(raises=TimeoutError("Run timeout"))
    with pytest.raises(SluiceError, match=rf"KFP run {kfp.run_id} did not finish within 120 s"):
        _submit(demo_slice, contract, mlflow_at, kfp, tmp_path, version_file=tmp_path / "v")
    assert not (tmp_path / "v").exists()


def test_an_unresolved_run_id_placeholder_is_never_a_tag_key():
    """Old KFP backends pass `{{$.pipeline_job_uuid}}` through literally: no per-run marker then."""
    assert pipeline_runs.pipeline_run_tag("{{$.pipeline_job_uuid}}") is None
    assert pipeline_runs.pipeline_run_tag("0f9c7c1e-5b1a-4c52-9a55-2f0f5d3c9b1e") == (
        "sluice.pipeline_run.0f9c7c1e-5b1a-4c52-9a55-2f0f5d3c9b1e"
    )


def test_a_backend_that_leaves_the_run_id_placeholder_unresolved_is_named(mlflow_at, tmp_path):
    """KFP before 2.4 passes `{{$.pipeline_job_uuid}}` through: say so instead of blaming a gate."""
    from mlflow import MlflowClient

    from ml.runners.cluster_outcome import registration_of

    name = f"submit-old-kfp-{uuid.uuid4().hex[:8]}"
    run_id = _logged_run(mlflow_at, name, tmp_path)
    _register(mlflow_at, name, run_id, "key-old", _evidence(tmp_path, True), "{{$.pipeline_job_uuid}}")
    outcome = registration_of(MlflowClient(mlflow_at), name, str(uuid.uuid4()))
    assert outcome.version is None
    assert "does not substitute it (needs KFP >= 2.4)" in outcome.reason
