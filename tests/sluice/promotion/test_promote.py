"""`sluice promote` / `rollback` / `status` / `--finalize` against a real MLflow server (PostgreSQL),
real bare git remotes and real `kubectl kustomize`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from sluice.cli import main as sluice_main
from sluice.errors import Refused, SluiceError
from sluice.promotion import overlay
from sluice.promotion.finalize import finalize
from sluice.promotion.promote import PromoteOptions, promote
from sluice.promotion.render import kustomize_build
from sluice.promotion.rollback import rollback
from sluice.promotion.signatures import key_trust, signature_verifier
from sluice.promotion.status import collect
from tests.conftest import git
from tests.sluice.promotion.conftest import GitOpsRepo, Registry

pytestmark = pytest.mark.slow

MLSERVER = (
    "docker.io/seldonio/mlserver:1.7.1-mlflow"
    "@sha256:492c8bbac687b148ad81a57278368f0aaaa2b3f72b09302419258d36058fe000"
)
# A syntactically valid digest for staging tests that never pull the image (no key: not verified).
OTHER_IMAGE = "registry.invalid/sluice/serving@sha256:" + "1" * 64


def do_promote(
    gitops: GitOpsRepo,
    reg: Registry,
    tmp_path: Path,
    model: str,
    label: str,
    env: str = "staging",
    image: str | None = None,
    verify=None,
    traffic: int | None = None,
    warnings: list | None = None,
):
    version = reg.v(model, label) if label in reg.versions[model] else label
    return promote(
        gitops.user,
        PromoteOptions(
            model=model, version=version, env=env, image=image, traffic=traffic, mlflow_ui_url=reg.url
        ),
        tracking_uri=reg.url,
        download_dir=tmp_path / "downloads",
        verify=verify
        or signature_verifier(env, None, warn=(warnings if warnings is not None else []).append),
        pr_body_path=tmp_path / f"pr-{model}-{label}.md",
    )


def remote_state(gitops: GitOpsRepo, model: str, env: str, ref: str = "main") -> overlay.OverlayState:
    text = gitops.remote_file(overlay.relative_overlay_file(model, env), ref)
    assert text is not None
    return overlay.parse(text, "remote")


def merge_into_main(gitops: GitOpsRepo, tmp_path: Path, branch: str) -> None:
    """What pressing "merge" on the pull request does, done in a reviewer's own clone."""
    reviewer = tmp_path / f"reviewer-{branch.replace('/', '-')}"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(reviewer))
    git(reviewer, "fetch", "--quiet", "origin", branch)
    git(reviewer, "merge", "--quiet", "--no-ff", "-m", f"Merge {branch}", "FETCH_HEAD")
    git(reviewer, "push", "--quiet", "origin", "main")


def test_staging_commits_and_pushes_without_touching_the_users_clone(gitops, registry, tmp_path):
    before = gitops.user_snapshot()
    base = gitops.remote_sha()
    warnings: list[str] = []
    result = do_promote(gitops, registry, tmp_path, registry.a, "good1", warnings=warnings)

    assert result.changed and result.pushed and result.branch == "main"
    assert gitops.remote_sha() == result.commit
    assert git(gitops.remote, "rev-parse", "main^") == base  # exactly one commit on top
    assert gitops.remote_log()[0] == f"promote({registry.a}): v{registry.v(registry.a, 'good1')} to staging"
    state = remote_state(gitops, registry.a, "staging")
    good1 = registry.versions[registry.a]["good1"]
    assert state.version == good1.number
    assert state.evidence_sha256 == good1.evidence_sha256
    assert state.model_uri.startswith("s3://mlflow-artifacts/") and "/models/m-" in state.model_uri
    assert state.image is None  # no --image: the runtime's pinned default keeps serving
    assert gitops.user_snapshot() == before
    assert any("NOT verified" in w for w in warnings)
    assert f"+    {overlay.ANN_VERSION}: '{good1.number}'" in result.diff
    assert result.report_path is not None and result.report_path.is_file()

    # Render what the remote now holds, independently of the promotion code.
    check = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(check))
    objects = kustomize_build(overlay.overlay_dir(check, registry.a, "staging"))
    isvc = next(o for o in objects if o["kind"] == "InferenceService")
    ann = isvc["metadata"]["annotations"]
    assert isvc["metadata"]["namespace"] == "models-staging"
    assert isvc["spec"]["predictor"]["model"]["storageUri"] == state.model_uri
    assert (
        ann["link.argocd.argoproj.io/mlflow"]
        == f"{registry.url}/#/models/{registry.a}/versions/{good1.number}"
    )
    assert ann["link.argocd.argoproj.io/evidence"].endswith(
        f"/runs/{good1.run_id}/artifacts/evidence/model-evidence.html"
    )
    runtime = next(o for o in objects if o["kind"] == "ServingRuntime")
    assert runtime["spec"]["containers"][0]["image"] == MLSERVER


def test_promoting_the_version_already_held_makes_no_commit(gitops, registry, tmp_path):
    first = do_promote(gitops, registry, tmp_path, registry.a, "good1")
    tip = gitops.remote_sha()
    again = do_promote(gitops, registry, tmp_path, registry.a, "good1")
    assert first.changed and not again.changed
    assert again.commit is None and "already holds" in again.message
    assert gitops.remote_sha() == tip


def test_image_is_written_pinned_and_carried_over_by_later_promotions(gitops, registry, tmp_path):
    do_promote(gitops, registry, tmp_path, registry.a, "good1", image=OTHER_IMAGE)
    assert remote_state(gitops, registry.a, "staging").image == OTHER_IMAGE
    result = do_promote(gitops, registry, tmp_path, registry.a, "good2")
    state = remote_state(gitops, registry.a, "staging")
    assert state.version == registry.v(registry.a, "good2") and state.image == OTHER_IMAGE
    assert any(OTHER_IMAGE in line and "InferenceService" in line for line in result.image_lines)


@pytest.mark.parametrize(
    ("label", "error", "words"),
    [
        ("failed", Refused, "failed its gate"),
        ("none", Refused, "has no gate evidence"),
        ("tampered", Refused, "does not match the recorded"),
        ("999", SluiceError, "not found in the MLflow registry"),
    ],
)
def test_refuses_without_passing_verified_evidence(gitops, registry, tmp_path, label, error, words):
    tip = gitops.remote_sha()
    with pytest.raises(error, match=words):
        do_promote(gitops, registry, tmp_path, registry.a, label)
    assert gitops.remote_sha() == tip


def test_cli_refuses_an_unpinned_image_with_one_line(gitops, registry, capsys):
    tip = gitops.remote_sha()
    code = sluice_main(
        [
            "promote",
            "--model",
            registry.a,
            "--version",
            registry.v(registry.a, "good1"),
            "--env",
            "staging",
            "--image",
            "ghcr.io/acme/serving:1.0",
            "--repo",
            str(gitops.user),
            "--tracking-uri",
            registry.url,
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 1  # a refusal: an image not pinned by digest never ships
    assert err.count("\n") == 0 and "--image 'ghcr.io/acme/serving:1.0' is not pinned by digest" in err
    assert gitops.remote_sha() == tip


def test_a_render_failure_commits_nothing(gitops, registry, tmp_path):
    breaker = tmp_path / "breaker"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(breaker))
    kustomization = breaker / "apps" / registry.a / "base" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("servingruntime.yaml", "missing-runtime.yaml"))
    git(breaker, "commit", "--quiet", "-am", "break the base")
    git(breaker, "push", "--quiet", "origin", "main")
    tip = gitops.remote_sha()
    with pytest.raises(SluiceError, match=r"rendering .* failed"):
        do_promote(gitops, registry, tmp_path, registry.a, "good1")
    assert gitops.remote_sha() == tip
    assert gitops.remote_log()[0] == "break the base"


def test_production_goes_to_a_review_branch_with_the_evidence(gitops, registry, tmp_path, signed_images):
    before = gitops.user_snapshot()
    main = gitops.remote_sha()
    verify = signature_verifier("production", key_trust(signed_images.key_pem), allow_insecure_loopback=True)
    result = do_promote(
        gitops,
        registry,
        tmp_path,
        registry.a,
        "good1",
        env="production",
        image=signed_images.signed,
        verify=verify,
    )
    version = registry.v(registry.a, "good1")
    branch = f"promote/{registry.a}/v{version}"

    assert result.branch == branch and result.pushed
    assert gitops.remote_sha() == main  # never pushed to the target branch
    assert gitops.remote_sha(branch) == result.commit
    assert git(gitops.remote, "rev-parse", f"{branch}^") == main
    state = remote_state(gitops, registry.a, "production", ref=branch)
    assert (state.version, state.image) == (version, signed_images.signed)
    body = result.pr_body_path.read_text()
    assert f"Promote `{registry.a}` v{version} to production" in body
    assert registry.versions[registry.a]["good1"].evidence_sha256 in body
    assert "quality.f1" in body  # the evidence table, rendered by gates.evidence
    assert "```diff" in body and "storageUri" in body
    assert f"sluice promote --finalize --model {registry.a} --env production" in body
    assert result.pr_url is None  # no token configured: body only
    assert gitops.user_snapshot() == before

    # The production overlay renders with its serving policy and the promoted version.
    check = tmp_path / "check"
    git(tmp_path, "clone", "--quiet", "--branch", branch, str(gitops.remote), str(check))
    isvc = next(
        o
        for o in kustomize_build(overlay.overlay_dir(check, registry.a, "production"))
        if o["kind"] == "InferenceService"
    )
    predictor = isvc["spec"]["predictor"]
    assert predictor["canaryTrafficPercent"] == 10 and predictor["minReplicas"] == 2
    assert predictor["model"]["image"] == signed_images.signed

    again = do_promote(
        gitops,
        registry,
        tmp_path,
        registry.a,
        "good1",
        env="production",
        image=signed_images.signed,
        verify=verify,
    )
    assert again.commit == result.commit  # the pushed branch is reused, not duplicated
    assert gitops.remote_sha(branch) == result.commit


@pytest.mark.parametrize(
    ("which", "key", "error", "words"),
    [
        ("signed", False, SluiceError, "needs a cosign public key"),  # usage: exit 2
        ("unsigned", True, Refused, "is not signed"),  # verdicts: exit 1
        ("signed_only", True, Refused, "has no attestations"),
    ],
)
def test_production_refuses_unverified_images(
    gitops, registry, tmp_path, signed_images, which, key, error, words
):
    verify = signature_verifier(
        "production", key_trust(signed_images.key_pem if key else None), allow_insecure_loopback=True
    )
    with pytest.raises(error, match=words):
        do_promote(
            gitops,
            registry,
            tmp_path,
            registry.a,
            "good1",
            env="production",
            image=getattr(signed_images, which),
            verify=verify,
        )
    out = subprocess.run(
        ["git", "branch", "--list", "promote/*"], cwd=gitops.remote, capture_output=True, text=True
    )
    assert out.stdout.strip() == ""


def test_rollback_restores_the_previous_version_and_never_bounces_back(gitops, registry, tmp_path):
    a = registry.a
    v1, v2, v3 = (registry.v(a, label) for label in ("good1", "good2", "good3"))
    do_promote(gitops, registry, tmp_path, a, "good1")
    v1_text = gitops.remote_file(overlay.relative_overlay_file(a, "staging"))
    do_promote(gitops, registry, tmp_path, a, "good2")
    verify = signature_verifier("staging", None, warn=lambda _m: None)

    result = rollback(gitops.user, a, "staging", verify=verify)
    assert result.changed and gitops.remote_log()[0] == f"rollback({a}): staging v{v2} -> v{v1}"
    assert gitops.remote_file(overlay.relative_overlay_file(a, "staging")) == v1_text  # byte for byte
    assert f"Sluice-Rolled-Back-From: {v2}" in git(gitops.remote, "log", "-1", "--format=%B")

    with pytest.raises(Refused, match="no readable earlier version"):
        rollback(gitops.user, a, "staging", verify=verify)  # v2 was rolled back from: not a target

    do_promote(gitops, registry, tmp_path, a, "good3")
    rollback(gitops.user, a, "staging", verify=verify)
    assert remote_state(gitops, a, "staging").version == v1  # skips v2, the known-bad one
    assert v3  # (v3 was the one just rolled back)


def test_production_rollback_goes_through_a_review_branch(gitops, registry, tmp_path, signed_images):
    a = registry.a
    verify = signature_verifier("production", key_trust(signed_images.key_pem), allow_insecure_loopback=True)
    for label in ("good1", "good2"):
        result = do_promote(
            gitops, registry, tmp_path, a, label, env="production", image=signed_images.signed, verify=verify
        )
        merge_into_main(gitops, tmp_path, result.branch)
    v1, v2 = registry.v(a, "good1"), registry.v(a, "good2")
    main = gitops.remote_sha()
    result = rollback(gitops.user, a, "production", verify=verify, pr_body_path=tmp_path / "rb.md")
    assert result.branch == f"promote/{a}/rollback-v{v2}-to-v{v1}"
    assert gitops.remote_sha() == main
    assert remote_state(gitops, a, "production", ref=result.branch).version == v1
    assert f"v{v2} -> v{v1}" in (tmp_path / "rb.md").read_text()


def test_finalize_moves_champion_and_status_flags_every_drift(
    gitops, registry, tmp_path, signed_images, capsys
):
    b = registry.b
    v1 = registry.v(b, "good1")
    verify = signature_verifier("production", key_trust(signed_images.key_pem), allow_insecure_loopback=True)
    result = do_promote(
        gitops, registry, tmp_path, b, "good1", env="production", image=signed_images.signed, verify=verify
    )

    with pytest.raises(SluiceError, match="holds no version yet"):
        finalize(gitops.user, b, tracking_uri=registry.url)  # not merged: main has nothing for b
    merge_into_main(gitops, tmp_path, result.branch)

    status = collect(gitops.user, tracking_uri=registry.url)
    assert any(f"{b}: production holds v{v1} but champion is unset" in m for m in status.mismatches)

    from mlflow import MlflowClient

    client = MlflowClient(registry.url)
    client.set_registered_model_alias(b, "challenger", v1)
    message = finalize(gitops.user, b, tracking_uri=registry.url)
    assert f"champion -> v{v1}" in message and "challenger cleared" in message
    aliases = client.get_registered_model(b).aliases
    assert aliases.get("champion") == v1 and "challenger" not in aliases
    assert "nothing to do" in finalize(gitops.user, b, tracking_uri=registry.url)

    code = sluice_main(["status", "--repo", str(gitops.user), "--tracking-uri", registry.url])
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith(b) and "production" in line)
    assert f"v{v1}" in row and "champion" in row
    assert not any(line.strip().startswith(f"{b}:") for line in out.splitlines())
    assert code in (0, 1)  # model a may have drifted in other tests of this session

    # Someone moves champion by hand: status names it and exits 1.
    a1 = registry.v(registry.a, "good1")
    client.set_registered_model_alias(registry.a, "champion", a1)
    client.set_registered_model_alias(b, "challenger", v1)
    client.delete_registered_model_alias(b, "champion")
    code = sluice_main(
        ["status", "--repo", str(gitops.user), "--tracking-uri", registry.url, "--format", "json"]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"{registry.a}: champion is v{a1} but production holds no version" in out
    assert f"{b}: production holds v{v1} but champion is unset" in out
    client.delete_registered_model_alias(registry.a, "champion")


def test_traffic_rollout_is_a_production_only_overlay_change(gitops, registry, tmp_path, signed_images):
    a = registry.a
    with pytest.raises(SluiceError, match="production only"):
        do_promote(gitops, registry, tmp_path, a, "good1", traffic=100)
    verify = signature_verifier("production", key_trust(signed_images.key_pem), allow_insecure_loopback=True)
    first = do_promote(
        gitops, registry, tmp_path, a, "good1", env="production", image=signed_images.signed, verify=verify
    )
    merge_into_main(gitops, tmp_path, first.branch)
    full = do_promote(
        gitops,
        registry,
        tmp_path,
        a,
        "good1",
        env="production",
        image=signed_images.signed,
        verify=verify,
        traffic=100,
    )
    assert full.changed and full.subject.endswith("to production at 100% traffic")
    state = remote_state(gitops, a, "production", ref=full.branch)
    assert state.traffic == 100
    docs = yaml.safe_load(gitops.remote_file(overlay.relative_overlay_file(a, "production"), full.branch))
    assert docs["spec"]["predictor"]["canaryTrafficPercent"] == 100


def test_a_push_refused_by_the_remote_is_reported_not_retried(gitops, registry, tmp_path):
    hook = gitops.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)
    tip = gitops.remote_sha()
    with pytest.raises(Refused, match=r"the remote refused the push to main: .*main is protected"):
        do_promote(gitops, registry, tmp_path, registry.a, "good1")
    assert gitops.remote_sha() == tip


def test_status_shows_argocd_sync_and_health_through_the_argocd_module(gitops, registry, monkeypatch, capsys):
    """Only the wiring is tested here: sluice.argocd.api (the Argo CD area) is replaced by a stub."""
    import sys
    import types

    calls = []

    def fetch_app_status(base_url, token, app_name):
        calls.append((base_url, token, app_name))
        status = "OutOfSync" if app_name.endswith("production") else "Synced"
        return {"app": app_name, "sync_status": status, "health_status": "Healthy", "revision": "abc"}

    monkeypatch.setitem(
        sys.modules, "sluice.argocd.api", types.SimpleNamespace(fetch_app_status=fetch_app_status)
    )
    monkeypatch.setenv("ARGOCD_AUTH_TOKEN", "tok")
    sluice_main(["status", "--repo", str(gitops.user), "--tracking-uri", registry.url,
                 "--argocd", "https://argocd.example"])  # fmt: skip
    out = capsys.readouterr().out
    assert "ARGO CD" in out and "Synced/Healthy" in out and "OutOfSync/Healthy" in out
    assert "Argo CD application sluice-production is OutOfSync" in out
    assert sorted({c[2] for c in calls}) == ["sluice-production", "sluice-staging"]
    assert all(c[:2] == ("https://argocd.example", "tok") for c in calls)


def test_unknown_model_and_unreachable_server_are_one_line_errors(
    gitops, registry, tmp_path, monkeypatch, capsys
):
    from tests.conftest import free_port

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for tracking, words in (
        (registry.url, "registered model nosuch-model: not found in the MLflow registry"),
        (f"http://127.0.0.1:{free_port()}", "cannot reach the MLflow tracking server"),
    ):
        code = sluice_main([
            "promote", "--model", "nosuch-model", "--version", "1", "--env", "staging",
            "--repo", str(gitops.user), "--tracking-uri", tracking, "--home", str(tmp_path / "h"),
        ])  # fmt: skip
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err and "\n" not in err
