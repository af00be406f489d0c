"""#14 break 7: every refusal exits 1 (`sluice: refused: <reason>`), usage and reachability problems
exit 2, messages say only what happened, the remote's own rejection text is shown, and a
production review branch is (re)based on the current target branch."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cli import main as sluice_main
from tests.conftest import git
from tests.sluice.promotion.conftest import GitOpsRepo, Registry

pytestmark = pytest.mark.slow


def cli(gitops: GitOpsRepo, reg: Registry, tmp_path: Path, label: str, *extra: str, env: str = "staging"):
    version = reg.v(reg.a, label) if label in reg.versions[reg.a] else label
    return sluice_main(["promote", "--model", reg.a, "--version", version, "--env", env,
                        "--repo", str(gitops.user), "--tracking-uri", reg.url, "--home", str(tmp_path / "h"),
                        *extra])  # fmt: skip


@pytest.mark.parametrize(
    ("label", "code", "words"),
    [
        ("failed", 1, "refused: model {a} version {v} failed its gate"),
        ("none", 1, "refused: model {a} version {v} has no gate evidence"),
        ("tampered", 1, "refused: model {a} version {v}: evidence file sha256"),
        ("999", 2, "error: model {a} version 999: not found in the MLflow registry"),
    ],
)
def test_evidence_refusals_exit_1_and_missing_versions_exit_2(
    gitops, registry, tmp_path, capsys, label, code, words
):
    tip = gitops.remote_sha()
    assert cli(gitops, registry, tmp_path, label) == code
    err = capsys.readouterr().err.strip()
    version = registry.v(registry.a, label) if label in registry.versions[registry.a] else label
    assert err.count("\n") == 0 and words.format(a=registry.a, v=version) in err, err
    assert gitops.remote_sha() == tip


@pytest.mark.parametrize(
    ("which", "key", "verdict", "words"),
    [
        ("signed", False, "error", "production promotion needs a cosign public key"),  # usage: exit 2
        ("unsigned", True, "refused", "is not signed"),
        ("signed_only", True, "refused", "has no attestations"),
    ],
)
def test_image_refusals_exit_1_and_write_no_pull_request_body(
    gitops, registry, tmp_path, signed_images, capsys, monkeypatch, which, key, verdict, words
):
    monkeypatch.delenv("SLUICE_GIT_TOKEN", raising=False)
    keyfile = tmp_path / "cosign.pub"
    keyfile.write_bytes(signed_images.key_pem)
    body = tmp_path / "pr.md"
    extra = ["--image", getattr(signed_images, which), "--allow-insecure-registry", "--pr-body", str(body)]
    code = cli(gitops, registry, tmp_path, "good1", *extra, *(["--key", str(keyfile)] if key else []),
               env="production")  # fmt: skip
    captured = capsys.readouterr()
    assert code == {"refused": 1, "error": 2}[verdict], captured.err
    assert captured.err.startswith(f"sluice: {verdict}: ") and words in captured.err
    assert "pull request body written" not in captured.out + captured.err
    assert not body.exists()


def test_an_unpinned_image_is_refused_with_exit_1(gitops, registry, tmp_path, capsys):
    tip = gitops.remote_sha()
    assert cli(gitops, registry, tmp_path, "good1", "--image", "ghcr.io/acme/serving:1.0") == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--image 'ghcr.io/acme/serving:1.0' is not pinned by digest" in err
    assert gitops.remote_sha() == tip


def test_a_pre_receive_hooks_own_message_is_shown_and_exits_1(gitops, registry, tmp_path, capsys):
    hook = gitops.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected: open a pull request' >&2\nexit 1\n")
    hook.chmod(0o755)
    tip = gitops.remote_sha()
    assert cli(gitops, registry, tmp_path, "good1") == 1
    verdict = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sluice:")]
    assert len(verdict) == 1 and verdict[0].startswith("sluice: refused: the remote refused the push to main")
    assert verdict[0].endswith("(pre-receive hook declined): main is protected: open a pull request")
    assert gitops.remote_sha() == tip


def test_a_production_note_is_printed_only_once_the_body_is_written(
    gitops, registry, tmp_path, signed_images, capsys, monkeypatch
):
    monkeypatch.delenv("SLUICE_GIT_TOKEN", raising=False)
    keyfile = tmp_path / "cosign.pub"
    keyfile.write_bytes(signed_images.key_pem)
    body = tmp_path / "pr.md"
    code = cli(gitops, registry, tmp_path, "good1", "--image", signed_images.signed, "--key", str(keyfile),
               "--allow-insecure-registry", "--pr-body", str(body), env="production")  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and body.is_file()
    assert "pull request body written" in out and str(body) in out


def test_a_production_branch_is_rebased_on_the_current_target_branch(
    gitops, registry, tmp_path, signed_images
):
    keyfile = tmp_path / "cosign.pub"
    keyfile.write_bytes(signed_images.key_pem)
    args = ("--image", signed_images.signed, "--key", str(keyfile), "--allow-insecure-registry")
    assert cli(gitops, registry, tmp_path, "good1", *args, env="production") == 0
    branch = f"promote/{registry.a}/v{registry.v(registry.a, 'good1')}"
    first = gitops.remote_sha(branch)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(other))
    (other / "README.md").write_text("main moved on\n")
    git(other, "commit", "--quiet", "-am", "unrelated change")
    git(other, "push", "--quiet", "origin", "main")

    assert cli(gitops, registry, tmp_path, "good1", *args, env="production") == 0
    again = gitops.remote_sha(branch)
    assert again != first
    assert git(gitops.remote, "rev-parse", f"{branch}^") == gitops.remote_sha()  # on today's main
    assert git(gitops.remote, "rev-list", "--count", f"main..{branch}") == "1"
