"""`sluice trace` on the laptop loop: a real `sluice run` (KFP's local runner, MLflow on SQLite under
the home) promotes into a local branch of a clone of this repository, and the trace walks it back
with the same code as for a cluster: local branch, SQLite store, the run record's snapshot path."""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
from pathlib import Path

import pytest

from ml.data.demo import write_demo
from sluice import cli
from tests.conftest import GIT_IDENTITY, REPO_ROOT, git
from tests.ml.conftest import LENIENT_POLICY

pytestmark = pytest.mark.slow

BRANCH = "promote/credit-default/staging-v1"
DASH = "\u2013"


@pytest.fixture(scope="module")
def laptop(tmp_path_factory: pytest.TempPathFactory) -> dict:
    top = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, check=False)
    if top.returncode != 0:
        pytest.skip(f"{REPO_ROOT} is not a git checkout: the laptop loop promotes into a clone of it")
    base = tmp_path_factory.mktemp("laptop")
    repo = base / "repo"
    git(base, "clone", "--quiet", "--shared", str(REPO_ROOT), str(repo))
    git(repo, "config", "user.name", GIT_IDENTITY["GIT_AUTHOR_NAME"])
    git(repo, "config", "user.email", GIT_IDENTITY["GIT_AUTHOR_EMAIL"])
    git(repo, "remote", "remove", "origin")  # a laptop clone tracing its own local branch
    demo = write_demo(base / "data", reference_rows=3000, current_rows=3000)
    home = base / "home"
    args = ["run", "--home", home, "--data", demo.current, "--contract", demo.contract]
    args += ["--reference", demo.reference, "--policy", LENIENT_POLICY, "--repo", repo]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        code = cli.main([str(a) for a in args])
    assert code == 0, out.getvalue()
    return {"repo": repo, "home": home, "data": demo.current}


def test_the_laptop_loop_traces_its_local_branch_and_sqlite_store(laptop: dict, capsys, monkeypatch) -> None:
    monkeypatch.delenv("SLUICE_COSIGN_PUB", raising=False)
    capsys.readouterr()
    argv = ["trace", "--model", "credit-default", "--env", "staging", "--ref", BRANCH]
    code = cli.main([*argv, "--repo", str(laptop["repo"]), "--home", str(laptop["home"])])
    out = capsys.readouterr().out
    hops = {m.group(2): (m.group(1), m.group(3)) for m in re.finditer(r"^  (\S) (\w+)\s+(.*)$", out, re.M)}
    assert code == 0, out
    assert [name for name in hops] == ["overlay", "version", "evidence", "code", "data", "image"]
    assert {hops[h][0] for h in ("overlay", "version", "evidence", "code", "data")} == {"✔"}, out
    assert f"v1 at {BRANCH}, written by sluice" in hops["overlay"][1]
    assert "challenger" in hops["version"][1]
    assert f"snapshot {laptop['data']} still hashes to" in hops["data"][1]
    assert "(path from the run record)" in hops["data"][1]
    assert hops["image"][0] == DASH and "signature not checked" in hops["image"][1]  # no key on a laptop


def test_the_laptop_trace_names_a_changed_snapshot(laptop: dict, capsys) -> None:
    data: Path = laptop["data"]
    kept = data.read_bytes()
    data.write_bytes(kept.replace(b"\n", b"\r\n", 1))  # same rows, one line ending changed
    try:
        code = cli.main(
            [
                "trace",
                "--model",
                "credit-default",
                "--version",
                "1",
                "--ref",
                BRANCH,
                "--repo",
                str(laptop["repo"]),
                "--home",
                str(laptop["home"]),
            ]
        )
    finally:
        data.write_bytes(kept)
    out = capsys.readouterr().out
    assert code == 1, out
    assert f"✘ data      snapshot {data} changed since training" in out
