"""The Tekton signing tasks, the Kyverno policy and `sluice verify` agree on the names that bind them:
the gate-evidence predicate type, the key Secrets, the storage format and the transparency-log default.

Read from the files themselves, so an edit on one side without the others fails here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from sluice.supply_chain import constants, verify

SIGN_TASK = Path("tekton/tasks/sign-image.yaml")
ATTEST_TASK = Path("tekton/tasks/attest-evidence.yaml")
SLUICE_PREDICATE = re.compile(r"https://sluice\.dev/attestations/[^\s\"'$)]+")


def _task(repo_root: Path, rel: Path) -> dict:
    path = repo_root / rel
    if not path.is_file():
        pytest.skip(f"{rel} does not exist yet (written by the Tekton engineer)")
    return yaml.safe_load(path.read_text())


def _param_default(task: dict, name: str) -> str | None:
    for param in task["spec"].get("params", []):
        if param["name"] == name:
            return param.get("default")
    return None


def _cosign_steps(task: dict) -> list[dict]:
    steps = [s for s in task["spec"]["steps"] if "cosign" in s.get("image", "")]
    assert steps, "the task runs no cosign step"
    return steps


def _policy(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "policies" / "verify-sluice-images.yaml").read_text())


def _policy_keys(policy: dict) -> list[dict]:
    signature, evidence = policy["spec"]["rules"]
    entries = signature["verifyImages"][0]["attestors"][0]["entries"]
    entries += evidence["verifyImages"][0]["attestations"][0]["attestors"][0]["entries"]
    return [entry["keys"] for entry in entries]


def test_predicate_type_agrees_everywhere(repo_root: Path) -> None:
    _task(repo_root, SIGN_TASK)
    attest = _task(repo_root, ATTEST_TASK)
    texts = [(repo_root / rel).read_text() for rel in (SIGN_TASK, ATTEST_TASK)]
    mentioned = {m for text in texts for m in SLUICE_PREDICATE.findall(text)}
    assert mentioned == {constants.PREDICATE_TYPE}
    assert _param_default(attest, "predicate-type") == constants.PREDICATE_TYPE
    (step,) = _cosign_steps(attest)
    assert "--type=$(params.predicate-type)" in step["args"]
    (attestation,) = _policy(repo_root)["spec"]["rules"][1]["verifyImages"][0]["attestations"]
    assert attestation["type"] == constants.PREDICATE_TYPE
    assert verify.PREDICATE_TYPE is constants.PREDICATE_TYPE  # what verify checks `passed` for
    assert constants.PREDICATE_TYPE.endswith("/" + constants.PREDICATE_VERSION)


def test_key_secrets_agree(repo_root: Path) -> None:
    for rel in (SIGN_TASK, ATTEST_TASK):
        task = _task(repo_root, rel)
        assert _param_default(task, "signing-secret") == constants.SIGNING_SECRET, rel
        text = (repo_root / rel).read_text()
        for key in constants.SIGNING_SECRET_KEYS:
            assert f"key: {key}" in text, f"{rel} does not read {key} from the signing Secret"
    for keys in _policy_keys(_policy(repo_root)):
        assert keys["secret"] == {
            "name": constants.PUBLIC_KEY_SECRET,
            "namespace": constants.PUBLIC_KEY_SECRET_NAMESPACE,
        }


def test_tasks_write_the_tag_based_format(repo_root: Path) -> None:
    """Kyverno's Cosign verifier reads .sig/.att tags; cosign v3 writes OCI-referrer bundles by default."""
    for rel in (SIGN_TASK, ATTEST_TASK):
        for step in _cosign_steps(_task(repo_root, rel)):
            image = step["image"]
            assert re.search(r"@sha256:[0-9a-f]{64}$", image), f"{rel}: cosign image not pinned by digest"
            version = re.search(r":v(\d+)\.", image)
            assert version, f"{rel}: cannot tell the cosign version from {image}"
            if int(version.group(1)) >= 3:
                args = " ".join(step.get("args", []))
                assert "--new-bundle-format=false" in args, (
                    f"{rel}: cosign v3 needs --new-bundle-format=false"
                )


def test_transparency_log_defaults_agree(repo_root: Path) -> None:
    """Tasks upload to Rekor only when asked; the default policy then must not demand Rekor entries."""
    for rel in (SIGN_TASK, ATTEST_TASK):
        task = _task(repo_root, rel)
        assert _param_default(task, "rekor-upload") == "false", rel
        (step,) = _cosign_steps(task)
        assert "--tlog-upload=$(params.rekor-upload)" in step["args"], rel
    for keys in _policy_keys(_policy(repo_root)):
        assert keys["rekor"]["ignoreTlog"] is True


def _volume(task: dict, name: str) -> dict:
    return next(v for v in task["spec"]["volumes"] if v["name"] == name)


def _mount(step: dict, name: str) -> str:
    return next(m["mountPath"] for m in step["volumeMounts"] if m["name"] == name)


def test_tasks_have_a_keyless_mode_next_to_the_key_mode(repo_root: Path) -> None:
    """Key mode by default; signing-key "" is cosign's keyless mode (Fulcio + Rekor, token from a file)."""
    for rel in (SIGN_TASK, ATTEST_TASK):
        task = _task(repo_root, rel)
        (step,) = _cosign_steps(task)
        args = step["args"]
        for flag, param in (
            ("--key", "signing-key"),
            ("--fulcio-url", "fulcio-url"),
            ("--identity-token", "identity-token-path"),
            ("--rekor-url", "rekor-url"),
        ):
            assert f"{flag}=$(params.{param})" in args, (rel, flag)
            assert _param_default(task, param), (rel, param)
        key_volume = _volume(task, "cosign-key")["secret"]
        assert (
            _param_default(task, "signing-key")
            == f"{_mount(step, 'cosign-key')}/{key_volume['items'][0]['path']}"
        )
        assert key_volume["optional"] is True  # keyless runs need no key Secret...
        password = next(e for e in step["env"] if e["name"] == "COSIGN_PASSWORD")
        assert password["valueFrom"]["secretKeyRef"]["optional"] is True  # ...nor its password
        (source,) = _volume(task, "oidc-token")["projected"]["sources"]
        token = source["serviceAccountToken"]
        assert token["audience"] == "sigstore" and token["expirationSeconds"] <= 3600
        assert _param_default(task, "identity-token-path") == f"{_mount(step, 'oidc-token')}/{token['path']}"


def test_the_deliver_pipeline_passes_the_signing_mode_to_every_signing_task(repo_root: Path) -> None:
    pipeline = yaml.safe_load((repo_root / "tekton" / "pipelines" / "deliver.yaml").read_text())
    declared = {p["name"]: p.get("default") for p in pipeline["spec"]["params"]}
    signing = [
        t for t in pipeline["spec"]["tasks"] if t["taskRef"]["name"] in ("sign-image", "attest-evidence")
    ]
    assert len(signing) == 3
    sign_task = _task(repo_root, SIGN_TASK)
    for param in ("signing-key", "fulcio-url", "rekor-url", "rekor-upload"):
        assert declared[param] == _param_default(sign_task, param), param
        for pipeline_task in signing:
            passed = {p["name"]: p["value"] for p in pipeline_task["params"]}
            assert passed[param] == f"$(params.{param})", (pipeline_task["name"], param)
