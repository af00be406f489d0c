"""#14 break 6: a malformed machine-owned `model-version.yaml` in git heals instead of blocking.

promote regenerates it whole, warning with the commit that broke it; rollback skips unreadable
revisions (naming them) and refuses only when no readable earlier version exists; status reports
it without crashing."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.cli import main as sluice_main
from sluice.promotion import overlay
from tests.conftest import git
from tests.sluice.promotion.conftest import GitOpsRepo, Registry

pytestmark = pytest.mark.slow

MALFORMED = {
    "broken-yaml": "apiVersion: serving.kserve.io/v1beta1\nkind: [InferenceService\n",
    "empty": "",
    "a-list": "- apiVersion: serving.kserve.io/v1beta1\n- kind: InferenceService\n",
    "a-configmap": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: oops\ndata: {}\n",
}


def hand_edit(gitops: GitOpsRepo, tmp_path: Path, model: str, env: str, text: str) -> str:
    """Someone commits `text` as the overlay file, straight to main; the commit's sha."""
    clone = tmp_path / f"editor-{len(list(tmp_path.glob('editor-*')))}"
    git(tmp_path, "clone", "--quiet", str(gitops.remote), str(clone))
    (clone / overlay.relative_overlay_file(model, env)).write_text(text)
    git(clone, "commit", "--quiet", "--allow-empty", "-am", "hand edit of the overlay")
    git(clone, "push", "--quiet", "origin", "main")
    return git(clone, "rev-parse", "HEAD")


def run(*args: str) -> int:
    return sluice_main(list(args))


def promote(gitops: GitOpsRepo, reg: Registry, tmp_path: Path, label: str) -> int:
    version = reg.v(reg.a, label)
    return run("promote", "--model", reg.a, "--version", version, "--env", "staging", "--repo",
               str(gitops.user), "--tracking-uri", reg.url, "--home", str(tmp_path / "h"))  # fmt: skip


def staging_state(gitops: GitOpsRepo, model: str) -> overlay.OverlayState:
    return overlay.parse(gitops.remote_file(overlay.relative_overlay_file(model, "staging")), "remote")


@pytest.mark.parametrize("kind", MALFORMED)
def test_promote_regenerates_a_malformed_overlay_naming_the_commit(gitops, registry, tmp_path, capsys, kind):
    bad = hand_edit(gitops, tmp_path, registry.a, "staging", MALFORMED[kind])
    assert promote(gitops, registry, tmp_path, "good1") == 0
    err = capsys.readouterr().err
    assert "warning:" in err and bad[:12] in err and "regenerat" in err, err
    assert staging_state(gitops, registry.a).version == registry.v(registry.a, "good1")


@pytest.mark.parametrize("kind", MALFORMED)
def test_status_reports_a_malformed_overlay_without_crashing(gitops, registry, capsys, tmp_path, kind):
    bad = hand_edit(gitops, tmp_path, registry.a, "staging", MALFORMED[kind])
    code = run("status", "--repo", str(gitops.user), "--tracking-uri", registry.url)
    out = capsys.readouterr().out
    assert code == 1
    rel = overlay.relative_overlay_file(registry.a, "staging")
    line = next(line for line in out.splitlines() if rel in line)
    assert "unreadable" in line and bad[:12] in line, out
    assert any(line.startswith(registry.b) for line in out.splitlines())  # the other model is still shown


def test_rollback_skips_unreadable_revisions_naming_them(gitops, registry, tmp_path, capsys):
    a = registry.a
    assert promote(gitops, registry, tmp_path, "good1") == 0
    bad = hand_edit(gitops, tmp_path, a, "staging", MALFORMED["a-configmap"])
    assert promote(gitops, registry, tmp_path, "good2") == 0  # heals the file
    capsys.readouterr()
    assert run("rollback", "--model", a, "--env", "staging", "--repo", str(gitops.user)) == 0
    out = capsys.readouterr()
    assert bad[:12] in out.out + out.err and "skipped" in out.out + out.err
    assert staging_state(gitops, a).version == registry.v(a, "good1")


def test_rollback_from_a_malformed_overlay_restores_the_last_readable_one(gitops, registry, tmp_path, capsys):
    a = registry.a
    assert promote(gitops, registry, tmp_path, "good1") == 0
    bad = hand_edit(gitops, tmp_path, a, "staging", MALFORMED["broken-yaml"])
    capsys.readouterr()
    assert run("rollback", "--model", a, "--env", "staging", "--repo", str(gitops.user)) == 0
    out = capsys.readouterr()
    assert bad[:12] in out.out + out.err
    assert staging_state(gitops, a).version == registry.v(a, "good1")


def test_rollback_refuses_only_when_no_readable_earlier_version_exists(gitops, registry, tmp_path, capsys):
    a = registry.a
    bad = hand_edit(gitops, tmp_path, a, "staging", MALFORMED["empty"])
    assert promote(gitops, registry, tmp_path, "good1") == 0
    capsys.readouterr()
    assert run("rollback", "--model", a, "--env", "staging", "--repo", str(gitops.user)) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("sluice: refused: ") and "no readable earlier version" in err and bad[:12] in err
    assert err.count("\n") == 0
