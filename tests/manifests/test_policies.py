"""policies/: Kyverno ClusterPolicies validated against the upstream Kyverno CRD schema, their
contract (what they must enforce), the Kyverno CLI test manifests beside them, and `kubectl kustomize`.

The Kyverno CLI cannot run here; schema validation uses sluice.lint (the repo's CRD validator,
which applies Kubernetes structural-schema semantics such as x-kubernetes-preserve-unknown-fields).
"""

from __future__ import annotations

import copy
import fnmatch
import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from sluice.lint.validate import Schemas, validate_object
from sluice.supply_chain import constants

POLICY_FILES = ("verify-sluice-images.yaml", "require-image-digest.yaml", "restrict-image-registries.yaml")
RESERVED_TEST_HOST = re.compile(r"^[^/]*\.(test|example|invalid)(:\d+)?/")
PINNED = re.compile(r"@sha256:[0-9a-f]{64}$")


@pytest.fixture(scope="module")
def policies_dir(repo_root: Path) -> Path:
    return repo_root / "policies"


def load(path: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def policy(policies_dir: Path, name: str) -> dict:
    (doc,) = load(policies_dir / f"{name}.yaml")
    return doc


def kustomize(path: Path) -> list[dict]:
    out = subprocess.run(["kubectl", "kustomize", str(path)], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    return [doc for doc in yaml.safe_load_all(out.stdout) if doc]


# --- schema ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", POLICY_FILES)
def test_policy_validates_against_the_kyverno_crd(policies_dir: Path, schemas: Schemas, name: str) -> None:
    (doc,) = load(policies_dir / name)
    assert (doc["apiVersion"], doc["kind"]) == ("kyverno.io/v1", "ClusterPolicy")
    assert validate_object(doc, schemas) == []


def test_rendered_policies_validate(policies_dir: Path, schemas: Schemas) -> None:
    rendered = kustomize(policies_dir)
    assert sorted((d["kind"], d["metadata"]["name"]) for d in rendered) == [
        ("ClusterPolicy", "require-image-digest"),
        ("ClusterPolicy", "restrict-image-registries"),
        ("ClusterPolicy", "verify-sluice-images"),
        ("ConfigMap", "sluice-registry-allowlist"),
    ]
    for doc in rendered:
        assert validate_object(doc, schemas) == [], doc["metadata"]["name"]


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda vi: vi.update(mutateDigest="no"), "mutateDigest"),
        (lambda vi: vi.update(failureAction="Block"), "failureAction"),
        (lambda vi: vi.update(verifyDigests=True), "verifyDigests"),
        (lambda vi: vi["attestors"][0]["entries"][0]["keys"]["secret"].pop("namespace"), "namespace"),
    ],
)
def test_the_schema_check_catches_mistakes(policies_dir: Path, schemas: Schemas, mutate, field: str) -> None:
    broken = copy.deepcopy(policy(policies_dir, "verify-sluice-images"))
    mutate(broken["spec"]["rules"][0]["verifyImages"][0])
    findings = validate_object(broken, schemas)
    assert findings and any(field in f.message or field in map(str, f.keys) for f in findings), findings


# --- what the policies enforce --------------------------------------------------------------------------


def test_verify_sluice_images_contract(policies_dir: Path) -> None:
    doc = policy(policies_dir, "verify-sluice-images")
    signature, evidence = doc["spec"]["rules"]
    assert signature["match"]["any"][0]["resources"]["namespaceSelector"]["matchLabels"] == {
        "sluice.dev/models": "enabled"
    }
    assert evidence["match"]["any"][0]["resources"]["namespaceSelector"]["matchLabels"] == {
        "sluice.dev/models": "enabled",
        "sluice.dev/environment": "production",
    }
    for rule in (signature, evidence):
        (vi,) = rule["verifyImages"]
        assert vi["type"] == "Cosign"  # the verifier that reads cosign's tag-based .sig/.att
        assert vi["imageReferences"] == ["*"]
        assert vi["verifyDigest"] is True and vi["required"] is True
        assert vi["failureAction"] == "Enforce"
        assert vi["mutateDigest"] is False
    entries = [*signature["verifyImages"][0]["attestors"][0]["entries"]]
    (attestation,) = evidence["verifyImages"][0]["attestations"]
    entries += attestation["attestors"][0]["entries"]
    for entry in entries:
        keys = entry["keys"]
        assert keys["secret"] == {
            "name": constants.PUBLIC_KEY_SECRET,
            "namespace": constants.PUBLIC_KEY_SECRET_NAMESPACE,
        }
        assert "publicKeys" not in keys
        assert keys["rekor"]["ignoreTlog"] is True and keys["ctlog"]["ignoreSCT"] is True
    assert attestation["type"] == constants.PREDICATE_TYPE
    assert attestation["conditions"] == [
        {
            "all": [
                {
                    "key": "{{ passed }}",
                    "operator": "Equals",
                    "value": True,
                    "message": "the Sluice gate evidence attested for this image did not pass",
                }
            ]
        }
    ]


def test_mutate_digest_false_is_explained(policies_dir: Path) -> None:
    text = (policies_dir / "verify-sluice-images.yaml").read_text()
    assert "Argo CD" in text and "OutOfSync" in text


def test_no_key_material_in_policies(policies_dir: Path) -> None:
    for path in policies_dir.rglob("*"):
        if path.is_file():
            assert "-----BEGIN" not in path.read_text(), path


def test_registry_allowlist_is_a_json_list(policies_dir: Path) -> None:
    (cm,) = load(policies_dir / "registry-allowlist.yaml")
    prefixes = json.loads(cm["data"]["prefixes"])
    assert isinstance(prefixes, list) and prefixes and all(p.endswith("/*") for p in prefixes)
    rule = policy(policies_dir, "restrict-image-registries")["spec"]["rules"][0]
    assert rule["context"][0]["configMap"] == {
        "name": cm["metadata"]["name"],
        "namespace": cm["metadata"]["namespace"],
    }


def test_transparency_log_component_turns_rekor_on(policies_dir: Path, tmp_path: Path) -> None:
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(policies_dir, overlay)}\n"
        f"components:\n  - {os.path.relpath(policies_dir / 'components' / 'transparency-log', overlay)}\n"
    )
    rendered = {d["metadata"]["name"]: d for d in kustomize(overlay)}
    text = json.dumps(rendered["verify-sluice-images"])
    assert text.count('"ignoreTlog": false') == 2 and '"ignoreTlog": true' not in text
    default = json.dumps({d["metadata"]["name"]: d for d in kustomize(policies_dir)}["verify-sluice-images"])
    assert default.count('"ignoreTlog": true') == 2


def _overlay(tmp_path: Path, policies_dir: Path, *components: Path, extra: str = "") -> Path:
    overlay = tmp_path / "overlay"
    overlay.mkdir(parents=True, exist_ok=True)
    listed = "".join(f"  - {os.path.relpath(c, overlay)}\n" for c in components)
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(policies_dir, overlay)}\ncomponents:\n{listed}{extra}"
    )
    return overlay


def test_keyless_component_replaces_the_key_attestor(
    policies_dir: Path, repo_root: Path, tmp_path: Path, schemas: Schemas
) -> None:
    """Both rules verify a Fulcio identity (the Tekton signing account) with Rekor and an SCT, no key."""
    overlay = _overlay(tmp_path, policies_dir, policies_dir / "components" / "keyless")
    rendered = {d["metadata"]["name"]: d for d in kustomize(overlay)}
    doc = rendered["verify-sluice-images"]
    assert validate_object(doc, schemas) == []
    signature, evidence = doc["spec"]["rules"]
    (attestation,) = evidence["verifyImages"][0]["attestations"]
    entries = [
        *signature["verifyImages"][0]["attestors"][0]["entries"],
        *attestation["attestors"][0]["entries"],
    ]
    accounts = yaml.safe_load_all((repo_root / "tekton" / "rbac" / "serviceaccounts.yaml").read_text())
    signer = next(sa for sa in accounts if sa["metadata"]["name"] == "sluice-sign")["metadata"]
    identity = f"https://kubernetes.io/namespaces/{signer['namespace']}/serviceaccounts/{signer['name']}"
    assert len(entries) == 2
    for entry in entries:
        assert set(entry) == {"keyless"}, "the key attestor is replaced, not added to"
        keyless = entry["keyless"]
        assert keyless["subject"] == identity and keyless["issuer"].startswith("https://")
        assert keyless["rekor"]["url"].startswith("https://") and keyless["ctlog"]["ignoreSCT"] is False
    assert attestation["type"] == constants.PREDICATE_TYPE and attestation["conditions"]  # unchanged
    assert "-----BEGIN" not in json.dumps(doc)


def test_sluice_lint_validates_the_keyless_variant(
    policies_dir: Path, repo_root: Path, crds_dir: Path, tmp_path: Path
) -> None:
    from sluice.lint.engine import run

    overlay = _overlay(tmp_path, policies_dir, policies_dir / "components" / "keyless")
    report = run([overlay], repo_root, crds_dir)
    assert report.stats["kustomizations_rendered"] == 1 and report.errors == []
    entry = "/spec/rules/0/verifyImages/0/attestors/0/entries/0"
    misspelt = (
        "patches:\n  - target: {kind: ClusterPolicy, name: verify-sluice-images}\n    patch: |-\n"
        f"      - op: add\n        path: {entry}/keyless/subjectRegexp\n        value: ^https://x$\n"
    )
    broken = _overlay(tmp_path / "b", policies_dir, policies_dir / "components" / "keyless", extra=misspelt)
    findings = run([broken], repo_root, crds_dir).errors
    assert any("subjectRegexp" in p.message for p in findings), findings


# --- image references -----------------------------------------------------------------------------------


def _images(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["image"]] if isinstance(node.get("image"), str) else []
        return found + [i for value in node.values() for i in _images(value)]
    if isinstance(node, list):
        return [i for value in node for i in _images(value)]
    return []


def test_every_image_in_policies_is_pinned_or_an_obvious_test_name(policies_dir: Path) -> None:
    seen = 0
    for path in policies_dir.rglob("*.yaml"):
        text = path.read_text()
        for doc in yaml.safe_load_all(text):
            for image in _images(doc):
                seen += 1
                if RESERVED_TEST_HOST.match(image):
                    continue
                assert PINNED.search(image), f"{path}: {image} is not pinned by digest"
                line = next(i for i, row in enumerate(text.splitlines()) if image in row)
                assert "# " in text.splitlines()[line - 1] + text.splitlines()[line], (
                    f"{path}: {image} needs a tag comment"
                )
    assert seen >= 8


# --- Kyverno CLI test manifests -------------------------------------------------------------------------


def kyverno_tests(policies_dir: Path) -> list[Path]:
    return sorted(policies_dir.rglob("kyverno-test.yaml"))


def test_every_policy_has_a_kyverno_cli_test(policies_dir: Path) -> None:
    covered = set()
    for test_file in kyverno_tests(policies_dir):
        for rel in yaml.safe_load(test_file.read_text())["policies"]:
            covered.add((test_file.parent / rel).resolve())
    assert covered == {(policies_dir / name).resolve() for name in POLICY_FILES}


@pytest.mark.parametrize(
    "name", ["verify-sluice-images", "require-image-digest", "restrict-image-registries"]
)
def test_kyverno_cli_test_is_consistent(policies_dir: Path, name: str) -> None:
    test_file = policies_dir / "tests" / name / "kyverno-test.yaml"
    test = yaml.safe_load(test_file.read_text())
    assert (test["apiVersion"], test["kind"]) == ("cli.kyverno.io/v1alpha1", "Test")
    base = test_file.parent
    rules = {}
    for rel in test["policies"]:
        for doc in load(base / rel):
            rules[doc["metadata"]["name"]] = {r["name"] for r in doc["spec"]["rules"]}
    resources = {}
    for rel in test["resources"]:
        for doc in load(base / rel):
            resources[(doc["kind"], doc["metadata"]["name"])] = doc
    values = yaml.safe_load((base / test["variables"]).read_text())
    assert (values["apiVersion"], values["kind"]) == ("cli.kyverno.io/v1alpha1", "Values")
    labelled = {ns["name"] for ns in values["namespaceSelector"]}
    for doc in resources.values():
        assert doc["metadata"]["namespace"] in labelled
    declared = set()
    for result in test["results"]:
        assert result["result"] in {"pass", "fail", "skip", "warn", "error"}
        assert result["rule"] in rules[result["policy"]], result
        for resource in result["resources"]:
            assert (result["kind"], resource) in resources, resource
            declared.add(resource)
    assert declared == {n for _, n in resources}, "every test resource has an expected result"


def _expected(policies_dir: Path, name: str) -> dict[str, str]:
    test = yaml.safe_load((policies_dir / "tests" / name / "kyverno-test.yaml").read_text())
    return {res: r["result"] for r in test["results"] for res in r["resources"]}


def _pods(policies_dir: Path, name: str) -> list[dict]:
    return load(policies_dir / "tests" / name / "resources.yaml")


def _in_model_namespace(pod: dict) -> bool:
    return pod["metadata"]["namespace"] in {"models-staging", "models-production"}


def test_digest_test_expectations_follow_the_policy_regex(policies_dir: Path) -> None:
    """The expected results are what the policy's own regex says (guards the test data)."""
    key = policy(policies_dir, "require-image-digest")["spec"]["rules"][0]["validate"]["foreach"][0]["deny"]
    regex = re.search(r"regex_match\('([^']+)'", key["conditions"]["any"][0]["key"]).group(1)
    expected = _expected(policies_dir, "require-image-digest")
    for pod in _pods(policies_dir, "require-image-digest"):
        containers = pod["spec"].get("initContainers", []) + pod["spec"]["containers"]
        verdict = "pass" if all(re.search(regex, c["image"]) for c in containers) else "fail"
        assert expected[pod["metadata"]["name"]] == (verdict if _in_model_namespace(pod) else "skip")


def test_registry_test_expectations_follow_the_allowlist_patterns(policies_dir: Path) -> None:
    values = yaml.safe_load(
        (policies_dir / "tests" / "restrict-image-registries" / "values.yaml").read_text()
    )
    patterns = values["policies"][0]["rules"][0]["values"]["allowlist.data.prefixes"]

    expected = _expected(policies_dir, "restrict-image-registries")
    for pod in _pods(policies_dir, "restrict-image-registries"):
        image = pod["spec"]["containers"][0]["image"]
        verdict = "pass" if any(fnmatch.fnmatchcase(image, p) for p in patterns) else "fail"
        assert expected[pod["metadata"]["name"]] == (verdict if _in_model_namespace(pod) else "skip")
