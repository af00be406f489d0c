"""#14 breaks 3, 4 and 5 for `sluice promote`: killed at each pause point, racing itself.

Real processes on a real bare remote. A kill at any point is recovered by a plain re-run (one
commit, the killed clone swept with its path printed); two production promotions of one version
with different images never lose an update; a staging "already holds" answer is about the tip
actually on the remote, not the one cloned before a racing promotion moved it.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.promotion import overlay
from sluice.promotion.hooks import POINTS
from tests.conftest import git
from tests.faults.conftest import repetitions
from tests.faults.harness import leftovers, release, start, survivors
from tests.sluice.promotion.conftest import GitOpsRepo, Registry

pytestmark = pytest.mark.slow

CORE_KILLS = {("staging", "after-commit"), ("production", "after-push")}
SWEPT = "left behind by a killed Sluice process"


def promote_args(
    gitops: GitOpsRepo, reg: Registry, label: str, env: str, tmp: Path, *, images=None, image: str = ""
) -> list[str]:
    args = ["promote", "--model", reg.a, "--version", reg.v(reg.a, label), "--env", env,
            "--repo", str(gitops.user), "--tracking-uri", reg.url, "--home", str(tmp / "home")]  # fmt: skip
    if env == "production":
        key = tmp / "cosign.pub"
        key.write_bytes(images.key_pem)
        args += ["--key", str(key), "--allow-insecure-registry", "--image", image or images.one]
    return args


def promote_commits(gitops: GitOpsRepo, ref: str = "main") -> list[str]:
    return [s for s in gitops.remote_log(ref) if s.startswith("promote(")]


def kill_params() -> list:
    params = []
    for env in ("staging", "production"):
        for point in POINTS:
            marks = () if (env, point) in CORE_KILLS else (pytest.mark.heavy,)
            params.append(pytest.param(env, point, id=f"{env}-{point}", marks=marks))
    return params


@pytest.mark.parametrize(("env", "point"), kill_params())
def test_a_promotion_killed_at_any_point_is_completed_by_a_rerun(
    env, point, gitops, registry, attested_images, tmp_path, matrix
):
    matrix.name(f"promote {env}: kill -9 at {point}")
    main = gitops.remote_sha()
    args = promote_args(gitops, registry, "good1", env, tmp_path, images=attested_images)
    killed = start(args, tmp_path, pause=point)
    killed.reached(point)
    killed.kill()
    assert survivors(killed.tag) == []

    code, out = start(args, tmp_path).finish()
    assert code == 0, out
    assert SWEPT in out, out
    assert leftovers(tmp_path / "tmp") == []
    if env == "staging":
        assert len(promote_commits(gitops)) == 1
    else:
        branch = f"promote/{registry.a}/v{registry.v(registry.a, 'good1')}"
        assert gitops.remote_sha() == main and git(gitops.remote, "rev-parse", f"{branch}^") == main
        assert len(promote_commits(gitops, branch)) == 1
    matrix.record("recovered")


def _race(gitops, tmp_path, args_one, args_two, point="before-push"):
    """Both promotions committed on the same tip, released together: one of them loses the push."""
    second = tmp_path / "second-clone"
    if not second.exists():
        git(tmp_path, "clone", "--quiet", str(gitops.remote), str(second))
    at = args_two.index("--repo") + 1
    one = start(args_one, tmp_path, pause=point, name="one")
    two = start([*args_two[:at], str(second), *args_two[at + 1 :]], tmp_path, pause=point, name="two")
    release(one.reached(point), two.reached(point))
    return (one, *one.finish()), (two, *two.finish())


@pytest.mark.scenario("promote production: one version, two images, at once")
@pytest.mark.parametrize("rep", repetitions())
def test_two_production_promotions_of_one_version_with_different_images_lose_no_update(
    rep, gitops, registry, attested_images, tmp_path, matrix
):
    images = {"one": attested_images.one, "two": attested_images.two}
    args = {}
    for name, image in images.items():
        base = promote_args(gitops, registry, "good1", "production", tmp_path, images=attested_images,
                            image=image)  # fmt: skip
        args[name] = [*base, "--pr-body", str(tmp_path / f"{name}.md")]
    (_, code_one, out_one), (_, code_two, out_two) = _race(gitops, tmp_path, args["one"], args["two"])
    branch = f"promote/{registry.a}/v{registry.v(registry.a, 'good1')}"
    text = gitops.remote_file(overlay.relative_overlay_file(registry.a, "production"), branch)
    held = overlay.parse(text, branch).image

    assert sorted([code_one, code_two]) == [0, 1], out_one + out_two
    winner, loser = ("one", "two") if code_one == 0 else ("two", "one")
    outputs = {"one": out_one, "two": out_two}
    assert held == images[winner]  # the branch holds what the winner reported ...
    assert gitops.remote_sha(branch)[:12] in outputs[winner]
    assert held in (tmp_path / f"{winner}.md").read_text()  # ... and what its pull request body names
    assert f"branch {branch} holds a different image" in outputs[loser]
    assert "pushed by another promotion" in outputs[loser]
    assert not (tmp_path / f"{loser}.md").exists() and "pull request body written" not in outputs[loser]
    assert len(promote_commits(gitops, branch)) == 1
    matrix.record("one landed, one refused")


@pytest.mark.scenario("promote staging: 'already holds' against a tip moved meanwhile")
@pytest.mark.parametrize("rep", repetitions())
def test_already_holds_is_judged_on_the_tip_being_pushed_onto(rep, gitops, registry, tmp_path, matrix):
    code, out = start(promote_args(gitops, registry, "good1", "staging", tmp_path), tmp_path).finish()
    assert code == 0, out  # staging holds good1
    late = start(promote_args(gitops, registry, "good1", "staging", tmp_path), tmp_path, pause="after-clone")
    fifo = late.reached("after-clone")  # cloned while staging holds good1
    code, out = start(promote_args(gitops, registry, "good2", "staging", tmp_path), tmp_path).finish()
    assert code == 0, out  # ... and now staging holds good2
    release(fifo)
    code, out = late.finish()

    held = overlay.parse(gitops.remote_file(overlay.relative_overlay_file(registry.a, "staging")), "main")
    assert code == 0, out
    assert "already holds" not in out, out
    assert held.version == registry.v(registry.a, "good1")
    assert git(gitops.remote, "rev-list", "--merges", "main") == ""
    assert len(promote_commits(gitops)) == 3
    matrix.record("re-applied on the new tip")


@pytest.mark.scenario("promote staging: two models at once")
@pytest.mark.parametrize("rep", repetitions())
def test_racing_staging_promotions_of_two_models_both_land_linearly(rep, gitops, registry, tmp_path, matrix):
    base = gitops.remote_sha()
    a = promote_args(gitops, registry, "good1", "staging", tmp_path)
    b = [registry.b if word == registry.a else word for word in a]
    b[b.index("--version") + 1] = registry.v(registry.b, "good1")
    (_one, code_one, out_one), (_two, code_two, out_two) = _race(gitops, tmp_path, a, b)
    assert (code_one, code_two) == (0, 0), out_one + out_two
    assert git(gitops.remote, "rev-list", "--count", f"{base}..main") == "2"
    assert git(gitops.remote, "rev-list", "--merges", "main") == ""
    for model in (registry.a, registry.b):
        text = gitops.remote_file(overlay.relative_overlay_file(model, "staging"))
        assert overlay.parse(text, model).version == registry.v(model, "good1")
    matrix.record("both landed")
