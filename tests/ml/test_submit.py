"""`sluice submit`: argument validation and the package it would upload (no cluster here)."""

from __future__ import annotations

import hashlib

import yaml

from sluice.environment import LOCK_LABEL
from tests.conftest import REPO_ROOT, free_port
from tests.sluice.supply_chain.test_image_config import push_labelled_image

IMAGE = "registry.example.com/sluice/trainer@sha256:" + "ab" * 32


def _args(demo_slice, **overrides):
    args = {
        "--host": "https://kfp.example.com",
        "--trainer-image": IMAGE,
        "--tracking-uri": "http://mlflow.mlflow.svc:5000",
        "--data": demo_slice.current,
        "--contract": demo_slice.contract,
        "--reference": demo_slice.reference,
        **overrides,
    }
    return ["submit", *[str(x) for pair in args.items() for x in pair if pair[1] is not None]]


def test_dry_run_compiles_the_pipeline_for_the_trainer_image(sluice, demo_slice, tmp_path):
    package = tmp_path / "pipeline.yaml"
    result = sluice(*_args(demo_slice, **{"--package-out": package}), "--dry-run")
    assert result.code == 0, result.err
    assert "dry run, not submitted" in result.out
    ir = yaml.safe_load(package.read_text())
    images = {e["container"]["image"] for e in ir["deploymentSpec"]["executors"].values()}
    assert images == {IMAGE}
    assert ir["pipelineInfo"]["name"] == "sluice-training"
    # Every task knows the image it runs in (the log and register steps tag versions with it).
    envs = [e["container"].get("env", []) for e in ir["deploymentSpec"]["executors"].values()]
    assert all({"name": "SLUICE_TRAINER_IMAGE", "value": IMAGE} in env for env in envs)


def test_build_submission_passes_input_identities(demo_slice, tmp_path):
    from ml.data.contract import sha256_file
    from ml.runners.cluster import SubmitRequest, build_submission

    ns = SubmitRequest(
        host="http://kfp:8888",
        trainer_image=IMAGE,
        tracking_uri="http://mlflow:5000",
        data=str(demo_slice.current),
        contract=str(demo_slice.contract),
        reference=str(demo_slice.reference),
        experiment=None,
    )
    submission = build_submission(ns, tmp_path)
    args = submission.arguments
    assert args["data_sha256"] == sha256_file(demo_slice.current)
    assert args["reference_sha256"] == sha256_file(demo_slice.reference)
    assert args["contract_sha256"] == sha256_file(demo_slice.contract)
    assert args["model_name"] == "credit-default" and submission.experiment == "credit-default"
    assert [c["model_type"] for c in args["candidates"]] == [
        "random_forest",
        "logistic_regression",
        "decision_tree",
    ]
    assert len(args["run_key"]) == 64
    declared = yaml.safe_load(submission.package.read_text())["root"]["inputDefinitions"]["parameters"]
    assert set(args) <= set(declared)
    required = {k for k, v in declared.items() if not v.get("isOptional")}
    assert required <= set(args)


def _single_error(result, fragment):
    assert result.code == 2
    assert len(result.err_lines) == 1, result.err
    assert result.err_lines[0].startswith("sluice: error: ") and fragment in result.err_lines[0]


def test_image_must_be_pinned_by_digest(sluice, demo_slice):
    for ref in (
        "registry.example.com/sluice/trainer:1.0",
        "trainer@sha256:abc",
        "UPPER/case@sha256:" + "a" * 64,
    ):
        _single_error(sluice(*_args(demo_slice, **{"--trainer-image": ref}), "--dry-run"), "pinned by digest")


def test_host_must_be_an_http_url(sluice, demo_slice):
    _single_error(sluice(*_args(demo_slice, **{"--host": "kfp.example.com"}), "--dry-run"), "--host must be")


def test_tracking_uri_must_be_reachable_from_pods(sluice, demo_slice):
    result = sluice(*_args(demo_slice, **{"--tracking-uri": "sqlite:///x.db"}), "--dry-run")
    _single_error(result, "--tracking-uri must be")


def test_missing_data_file(sluice, demo_slice, tmp_path):
    _single_error(
        sluice(*_args(demo_slice, **{"--data": tmp_path / "gone.csv"}), "--dry-run"), "data file not found"
    )


def test_unreachable_cluster_is_a_one_line_error(sluice, demo_slice):
    args = _args(demo_slice, **{"--host": f"http://127.0.0.1:{free_port()}"})
    result = sluice(*args, "--lock-sha256", CHECKOUT_LOCK)
    _single_error(result, "cannot connect to KFP at http://127.0.0.1:")


# --- the trainer image must come from this checkout's lock ---------------------------------------------

CHECKOUT_LOCK = hashlib.sha256((REPO_ROOT / "requirements.lock").read_bytes()).hexdigest()
OTHER_LOCK = "e" * 64


def _submit_image(sluice, demo_slice, image: str, *extra: str):
    """Up to the KFP connection (a closed port): an exit 2 there means the lock check let it through."""
    host = f"http://127.0.0.1:{free_port()}"
    args = _args(demo_slice, **{"--trainer-image": image, "--host": host})
    return sluice(*args, "--allow-insecure-loopback", *extra)


def test_an_image_built_from_this_checkouts_lock_is_submitted(sluice, demo_slice, oci_registry):
    image = push_labelled_image(oci_registry, {LOCK_LABEL: CHECKOUT_LOCK})
    _single_error(_submit_image(sluice, demo_slice, image), "cannot connect to KFP")


def test_an_image_built_from_another_lock_is_refused(sluice, demo_slice, oci_registry):
    image = push_labelled_image(oci_registry, {LOCK_LABEL: OTHER_LOCK})
    result = _submit_image(sluice, demo_slice, image)
    assert result.code == 1 and len(result.err_lines) == 1, result.err
    assert result.err_lines[0] == (
        f"sluice: refused: trainer image {image} was built from lock {OTHER_LOCK} (label {LOCK_LABEL}), "
        f"but this checkout's requirements.lock is {CHECKOUT_LOCK}: rebuild the image from this checkout, "
        "or pass --allow-lock-mismatch"
    )
    _single_error(_submit_image(sluice, demo_slice, image, "--allow-lock-mismatch"), "cannot connect to KFP")


def test_an_image_without_the_label_is_refused(sluice, demo_slice, oci_registry):
    image = push_labelled_image(oci_registry, {"org.opencontainers.image.title": "sluice-trainer"})
    result = _submit_image(sluice, demo_slice, image)
    assert result.code == 1 and f"has no {LOCK_LABEL} label" in result.err


def test_an_unreadable_registry_names_the_way_out(sluice, demo_slice):
    image = f"127.0.0.1:{free_port()}/sluice/trainer@sha256:" + "ab" * 32
    result = _submit_image(sluice, demo_slice, image)
    _single_error(result, f"cannot read the {LOCK_LABEL} label of {image}")
    assert "--lock-sha256" in result.err_lines[0]
    # ... and the way out works without the registry.
    _single_error(_submit_image(sluice, demo_slice, image, "--lock-sha256", CHECKOUT_LOCK), "cannot connect")
    result = _submit_image(sluice, demo_slice, image, "--lock-sha256", OTHER_LOCK)
    assert result.code == 1 and "(--lock-sha256)" in result.err


def test_a_malformed_lock_sha256_is_a_usage_error(sluice, demo_slice):
    result = _submit_image(sluice, demo_slice, IMAGE, "--lock-sha256", "abc")
    _single_error(result, "--lock-sha256 must be 64")
