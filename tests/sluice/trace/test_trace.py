"""`sluice trace` end to end: a real MLflow server on PostgreSQL, real git remotes, real signatures
in the loopback docker-registry, and one ✘ case per way the chain can break."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from sluice import tags
from sluice.promotion import overlay
from sluice.promotion.promote import PromoteOptions, promote
from sluice.promotion.signatures import signature_verifier
from tests.conftest import free_port, git
from tests.sluice.trace.conftest import World, register_version

pytestmark = pytest.mark.slow

DASH = "\u2013"  # the mark of a hop not verifiable here
HOPS = ("overlay", "version", "evidence", "code", "data", "image")


def hop_lines(out: str) -> dict[str, tuple[str, str]]:
    """hop name -> (mark, reason) from the text output."""
    found = {}
    for line in out.splitlines():
        m = re.match(r"^  (\S) (\w+)\s+(.*)$", line)
        if m and m.group(2) in HOPS:
            found[m.group(2)] = (m.group(1), m.group(3))
    return found


def test_a_clean_trace_agrees_at_every_hop(world: World, run_trace) -> None:
    code, out, err = run_trace("--model", world.model, "--env", "staging")
    assert code == 0, out + err
    hops = hop_lines(out)
    assert list(hops) == list(HOPS)
    assert {mark for mark, _ in hops.values()} == {"✔"}, out
    assert f"v{world.version} at origin/main, written by sluice" in hops["overlay"][1]
    assert f"run {world.run_id[:12]}" in hops["version"][1]
    assert "re-hashed and matches; passed" in hops["evidence"][1]
    assert f"commit {world.code_commit[:12]} is in this repository" in hops["code"][1]
    assert "pipeline IR same as this installation's" in hops["code"][1]
    assert "requirements.lock at the commit hashes to the recorded lock" in hops["code"][1]
    assert f"snapshot {world.data} still hashes to" in hops["data"][1]
    assert "signature verified by" in hops["image"][1]
    assert out.rstrip().endswith("=> every verifiable hop agrees")


def marks(hops: dict[str, tuple[str, str]]) -> dict[str, str]:
    return {name: mark for name, (mark, _) in hops.items()}


def branch_from_main(world: World, branch: str) -> None:
    """A branch on the remote at main's tip, for a case that must not disturb main."""
    git(world.gitops.user, "fetch", "--quiet", "origin")
    git(world.gitops.user, "push", "--quiet", "origin", f"origin/main:refs/heads/{branch}")


def promote_on_branch(
    world: World, branch: str, image: str, tmp_path: Path, version: str | None = None, warn=None
) -> None:
    """`promote()` to staging on a fresh branch from main, as a laptop without a key would (unverified)."""
    branch_from_main(world, branch)
    promote(
        world.gitops.user,
        PromoteOptions(model=world.model, version=version or world.version, env="staging", image=image),
        tracking_uri=world.url,
        download_dir=tmp_path,
        verify=signature_verifier("staging", None, warn=warn or (lambda _: None)),
        branch=branch,
    )


def test_tampered_evidence_is_a_cross_on_the_evidence_hop(world: World, run_trace, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(world.url)
    folder = world.evidence_artifact.rsplit("/", 1)[0]
    original = Path(client.download_artifacts(world.run_id, world.evidence_artifact, str(tmp_path)))
    kept = original.read_bytes()
    doc = json.loads(kept)
    doc["summary"] += " Reviewed and approved."  # a plausible edit: still valid, still "passed"
    tampered = tmp_path / "tampered" / original.name
    tampered.parent.mkdir()
    tampered.write_text(json.dumps(doc))
    client.log_artifact(world.run_id, str(tampered), artifact_path=folder)
    try:
        code, out, err = run_trace("--model", world.model, "--env", "staging")
    finally:
        original.write_bytes(kept)
        client.log_artifact(world.run_id, str(original), artifact_path=folder)
    hops = hop_lines(out)
    assert code == 1, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✔"), "evidence": "✘"}, out
    assert f"not the recorded {world_digest(world)[:12]}" in hops["evidence"][1]
    assert "=> disagrees: evidence" in out


def world_digest(world: World) -> str:
    return world.evidence_artifact.split("/")[1].split("-")[-1]


def test_a_changed_data_file_is_a_cross_on_the_data_hop(world: World, run_trace) -> None:
    kept = world.data.read_bytes()
    world.data.write_bytes(kept + kept.splitlines(keepends=True)[-1])  # one row more
    try:
        code, out, err = run_trace("--model", world.model, "--env", "staging")
    finally:
        world.data.write_bytes(kept)
    hops = hop_lines(out)
    assert code == 1, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✔"), "data": "✘"}, out
    assert f"snapshot {world.data} changed since training" in hops["data"][1]


def test_an_overlay_edited_by_hand_to_another_image_is_named(world: World, run_trace, tmp_path: Path) -> None:
    rel = overlay.relative_overlay_file(world.model, "staging")
    editor = tmp_path / "editor"
    git(tmp_path, "clone", "--quiet", str(world.gitops.remote), str(editor))
    git(editor, "checkout", "--quiet", "-b", "hand-edit")
    path = editor / rel
    path.write_text(path.read_text().replace(world.images.signed, world.images.unsigned))
    git(editor, "commit", "--quiet", "-am", "hotfix: roll the serving image")
    git(editor, "push", "--quiet", "origin", "hand-edit")
    edit = git(editor, "rev-parse", "HEAD")

    code, out, err = run_trace("--model", world.model, "--env", "staging", "--ref", "hand-edit")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✔"), "overlay": "✘", "image": "✘"}, out
    assert f"edited by hand in {edit[:12]} (Sluice Test <test@sluice.invalid>)" in hops["overlay"][1]
    assert f"image {world.images.signed} -> {world.images.unsigned}" in hops["overlay"][1]
    assert "is not signed" in hops["image"][1]
    assert "at origin/hand-edit" in out


def test_an_unsigned_image_is_a_cross_on_the_image_hop(world: World, run_trace, tmp_path: Path) -> None:
    warnings: list[str] = []
    promote_on_branch(world, "unsigned", world.images.unsigned, tmp_path, warn=warnings.append)
    assert any("NOT verified" in w for w in warnings)
    code, out, err = run_trace("--model", world.model, "--env", "staging", "--ref", "unsigned")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✔"), "image": "✘"}, out
    assert (
        hops["image"][1].startswith(f"{world.images.unsigned}: image") and "is not signed" in hops["image"][1]
    )
    # Without a key the signature is not verifiable here: a dash, not a cross, and exit 0.
    code, out, _ = run_trace("--model", world.model, "--env", "staging", "--ref", "unsigned", key=False)
    assert code == 0 and hop_lines(out)["image"][0] == DASH and "signature not checked" in out


def test_a_deleted_mlflow_version_is_named_and_the_rest_still_prints(
    world: World, run_trace, tmp_path: Path
) -> None:
    from mlflow import MlflowClient

    identity = tags.read_identity(MlflowClient(world.url).get_model_version(world.model, world.version).tags)
    version, _ = register_version(world.url, world.model, world.run_id, identity)
    promote_on_branch(world, "deleted", world.images.signed, tmp_path, version=version)
    MlflowClient(world.url).delete_model_version(world.model, version)
    code, out, err = run_trace("--model", world.model, "--env", "staging", "--ref", "deleted")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert marks(hops) == {
        "overlay": "✔",
        "version": "✘",
        "evidence": DASH,
        "code": DASH,
        "data": DASH,
        "image": "✔",
    }, out
    assert (
        f"model {world.model} version {version} is not in the MLflow registry (deleted since promotion?)"
        in out
    )


def test_an_unreachable_mlflow_server_is_exit_2_with_git_and_image_still_checked(
    world: World, run_trace
) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_trace("--model", world.model, "--env", "staging", tracking_uri=down)
    hops = hop_lines(out)
    assert code == 2, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✘"), "overlay": "✔", "image": "✔"}, out
    assert f"MLflow server at {down} is unreachable" in hops["version"][1]
    assert "=> incomplete: could not read version, evidence, code, data" in out


def test_unknown_model_is_a_cross_and_bad_usage_is_exit_2(world: World, run_trace) -> None:
    code, out, err = run_trace("--model", "no-such-model", "--env", "staging")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert hops["overlay"] == (
        "✘",
        "no apps/no-such-model/overlays/staging/model-version.yaml at origin/main: "
        "unknown model or environment",
    )
    assert {hops[h][0] for h in HOPS[1:]} == {DASH}
    code, out, err = run_trace("--env", "staging")
    assert code == 2 and "sluice: error: trace needs --model" in err and out == ""
    code, out, err = run_trace("--model", world.model, "--env", "qa")
    assert code == 2 and "unknown environment 'qa'" in err


def test_json_matches_the_shipped_schema_and_markdown_is_a_ticket(world: World, run_trace) -> None:
    import jsonschema

    from sluice.trace.report import SCHEMA_FILE

    code, out, _ = run_trace("--model", world.model, "--env", "staging", "--format", "json")
    assert code == 0
    doc = json.loads(out)
    jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text())).validate(doc)
    (one,) = doc["traces"]
    assert doc["exit_code"] == 0 and one["verdict"] == "agrees" and one["version"] == world.version
    version = next(h for h in one["hops"] if h["name"] == "version")
    assert version["facts"]["run_id"] == world.run_id
    assert version["facts"]["identity"]["code_commit"] == world.code_commit
    code, out, _ = run_trace("--model", world.model, "--env", "staging", "--format", "markdown")
    assert code == 0 and "| ✔ | evidence |" in out and "**Verdict:** every verifiable hop agrees" in out


def test_an_image_or_a_version_finds_the_environments_serving_it(world: World, run_trace) -> None:
    code, out, err = run_trace(world.images.signed)
    assert code == 0, out + err
    assert out.startswith(f"trace {world.model} v{world.version} in staging at origin/main")
    code, out, err = run_trace("--model", world.model, "--version", world.version)
    assert code == 0, out + err
    assert out.startswith(f"trace {world.model} v{world.version} in staging at origin/main")


def test_production_through_a_merged_pull_request_with_attestation_and_alias(
    world: World, run_trace, tmp_path: Path
) -> None:
    from sluice.promotion.finalize import finalize
    from sluice.promotion.signatures import key_trust

    branch_from_main(world, "prod")
    result = promote(
        world.gitops.user,
        PromoteOptions(model=world.model, version=world.version, env="production", image=world.images.signed),
        tracking_uri=world.url,
        download_dir=tmp_path,
        verify=signature_verifier(
            "production", key_trust(world.images.key_pem), allow_insecure_loopback=True
        ),
        branch="prod",
        pr_body_path=tmp_path / "pr.md",
    )
    reviewer = tmp_path / "reviewer"
    git(tmp_path, "clone", "--quiet", "--branch", "prod", str(world.gitops.remote), str(reviewer))
    git(reviewer, "fetch", "--quiet", "origin", result.branch)
    message = f"Merge pull request #7 from acme/{result.branch}"
    git(reviewer, "merge", "--quiet", "--no-ff", "-m", message, "FETCH_HEAD")
    git(reviewer, "push", "--quiet", "origin", "prod")
    merge = git(reviewer, "rev-parse", "HEAD")
    finalize(world.gitops.user, world.model, tracking_uri=world.url, branch="prod")

    code, out, err = run_trace("--model", world.model, "--env", "production", "--ref", "prod")
    hops = hop_lines(out)
    assert code == 0, out + err
    assert marks(hops) == dict.fromkeys(HOPS, "✔"), out
    assert f"written by sluice in {result.commit[:12]}" in hops["overlay"][1]
    assert f"merged in {merge[:12]}" in hops["overlay"][1]
    assert "champion" in hops["version"][1]
    assert "and 1 passing gate-evidence attestation(s) verified" in hops["image"][1]
    assert "as production requires" in hops["image"][1]
    code, out, _ = run_trace(
        "--model", world.model, "--env", "production", "--ref", "prod", "--format", "json"
    )
    (one,) = json.loads(out)["traces"]
    facts = {h["name"]: h["facts"] for h in one["hops"]}
    assert facts["overlay"]["merged_by"]["pull_request"] == "7"
    assert facts["overlay"]["last_change"]["trailers"]["Sluice-Environment"] == "production"
    history = facts["version"]["promotions"]
    assert [(p["env"], p["version"]) for p in history[:2]] == [
        ("production", world.version),
        ("staging", world.version),
    ]
    assert facts["version"]["production_commit"] == result.commit


def test_status_links_each_environment_line_to_its_trace(world: World, run_trace, capsys) -> None:
    from sluice.cli import main as sluice_main

    capsys.readouterr()
    sluice_main(["status", "--trace", "--repo", str(world.gitops.user), "--tracking-uri", world.url])
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[-1] == "TRACE"
    row = next(line for line in out.splitlines() if line.startswith(world.model) and " staging " in line)
    command = row[row.index("sluice trace") :].split()
    assert command == ["sluice", "trace", "--model", world.model, "--env", "staging"]
    code, traced, err = run_trace(*command[2:])  # the command as printed, against the same git and MLflow
    assert code == 0, traced + err


def test_a_hand_written_overlay_and_an_unpromoted_environment_are_named(
    world: World, run_trace, tmp_path: Path
) -> None:
    rel = overlay.relative_overlay_file(world.model, "staging")
    editor = tmp_path / "editor"
    git(tmp_path, "clone", "--quiet", str(world.gitops.remote), str(editor))
    git(editor, "checkout", "--quiet", "-b", "hand-written")
    (editor / rel).write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n"
        f"  name: {world.model}\nspec:\n  predictor:\n    model:\n"
        f"      image: {world.images.signed}\n      storageUri: s3://models/by-hand\n"
    )
    git(editor, "commit", "--quiet", "-am", "serve the model from s3 by hand")
    git(editor, "push", "--quiet", "origin", "hand-written")
    code, out, err = run_trace("--model", world.model, "--env", "staging", "--ref", "hand-written")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert hops["overlay"] == (
        "✘",
        f"{rel} has no Sluice annotations (sluice.dev/registered-model): hand-written?",
    )
    assert {hops[h][0] for h in HOPS[1:]} == {DASH}, out

    code, out, err = run_trace("--model", world.model, "--env", "production")  # main: never promoted there
    hops = hop_lines(out)
    assert code == 1, out + err
    assert hops["overlay"] == (
        "✘",
        f"production holds no version of {world.model} at origin/main (unpromoted)",
    )


def test_a_registry_that_is_down_is_exit_2_and_an_unknown_version_a_cross(
    world: World, run_trace, tmp_path: Path
) -> None:
    digest = world.images.signed.split("@", 1)[1]
    down = f"127.0.0.1:{free_port()}/sluice/serving@{digest}"  # the same image, on a registry that is gone
    promote_on_branch(world, "registry-down", down, tmp_path)
    code, out, err = run_trace("--model", world.model, "--env", "staging", "--ref", "registry-down")
    hops = hop_lines(out)
    assert code == 2, out + err
    assert marks(hops) == {**dict.fromkeys(HOPS, "✔"), "image": "✘"}, out
    assert hops["image"][1].startswith(f"cannot verify {down}: ")
    code, out, _ = run_trace(
        "--model", world.model, "--env", "staging", "--ref", "registry-down", "--format", "json"
    )
    image = json.loads(out)["traces"][0]["hops"][-1]
    assert image["name"] == "image" and image["unreachable"] is True

    code, out, err = run_trace("--model", world.model, "--version", "999")
    hops = hop_lines(out)
    assert code == 1, out + err
    assert hops["overlay"] == (DASH, f"{world.model} v999 is in no overlay at origin/main")
    assert hops["version"] == (
        "✘",
        f"model {world.model} version 999 is not in the MLflow registry",
    )


def test_a_keyless_signed_image_is_verified_against_the_identity(
    world: World, run_trace, tmp_path: Path
) -> None:
    from sluice.supply_chain.oci import RegistryClient
    from tests.sluice.supply_chain.test_keyless_registry import GITHUB, WORKFLOW, keyless_image
    from tests.sluice.supply_chain.testpki import LocalSigstore

    sigstore = LocalSigstore()
    registry = world.images.signed.split("/", 1)[0]
    image = keyless_image(
        RegistryClient(registry, allow_insecure_loopback=True), registry, sigstore, b"trace"
    )
    root = tmp_path / "trusted_root.json"
    root.write_bytes(sigstore.trusted_root())
    promote_on_branch(world, "keyless", image, tmp_path)
    identity = ["--certificate-oidc-issuer", GITHUB, "--trusted-root", str(root)]
    code, out, err = run_trace(
        "--model", world.model, "--env", "staging", "--ref", "keyless",
        "--certificate-identity", WORKFLOW, *identity, key=False,
    )  # fmt: skip
    assert code == 0, out + err
    assert hop_lines(out)["image"][0] == "✔" and WORKFLOW in hop_lines(out)["image"][1]
    code, out, err = run_trace(
        "--model", world.model, "--env", "staging", "--ref", "keyless",
        "--certificate-identity", "https://github.com/evil/x", *identity, key=False,
    )  # fmt: skip
    assert code == 1 and hop_lines(out)["image"][0] == "✘" and "does not match" in out, out + err
