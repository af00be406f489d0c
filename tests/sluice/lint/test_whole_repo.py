"""The deliverable: `sluice lint` on the real repository is clean, from a plain copy of it.

The copy has no ../shared beside it and starts with an empty schema cache, as a fresh clone on a
platform engineer's laptop would: the pinned schemas come from a loopback `python -m http.server`
mirror (the same process a user would start in an air-gapped network), with real sha256 checks.
A failure lists exactly what is left to fix, one `path:line: rule: message` per line.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sluice.lint.pins import CACHE_ENV, MIRROR_ENV, load_pins
from tests.conftest import free_port, http_ok, wait_until

ALTERED = "kserve/servingruntimes.yaml"


def _plain_copy(repo_root: Path, dest: Path) -> Path:
    """The files a clone of the working tree would hold (tracked and new, nothing ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=repo_root, capture_output=True, check=True,
    ).stdout.decode()
    for rel in filter(None, listed.split("\0")):
        source = repo_root / rel
        if source.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / rel)
    return dest


@pytest.fixture
def clone(repo_root: Path, tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git not installed")
    return _plain_copy(repo_root, tmp_path / "clone")


@pytest.fixture
def mirror(crds_dir: Path, tmp_path: Path) -> Iterator[tuple[Path, str, subprocess.Popen]]:
    """`python -m http.server` serving a writable copy of the shared CRDs; yields (dir, url, process)."""
    directory = tmp_path / "mirror"
    shutil.copytree(crds_dir, directory)
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    port = free_port()
    command = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_until(lambda: http_ok(url), "loopback CRD mirror", timeout=30, proc=proc)
        yield directory, url, proc
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def lint(clone: Path, cache: Path, mirror_url: str, *args: str) -> subprocess.CompletedProcess:
    """`sluice lint` run from the copy's own code, with only the mirror and cache settings."""
    drop = ("SLUICE_SHARED_DIR", "SLUICE_CRDS_DIR", MIRROR_ENV, CACHE_ENV, "PYTHONPATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({"PYTHONPATH": str(clone), CACHE_ENV: str(cache), MIRROR_ENV: mirror_url})
    return subprocess.run(
        [sys.executable, "-m", "sluice", "lint", *args],
        cwd=clone, capture_output=True, text=True, timeout=600, env=env,
    )


def test_a_plain_clone_lints_clean_through_a_mirror_then_offline(clone, mirror, tmp_path):
    directory, url, server = mirror
    assert not (clone.parent / "shared").exists()
    out = lint(clone, tmp_path / "cache", url)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1].startswith("sluice lint: 0 errors")
    assert f"fetching {len(load_pins())} pinned schema file(s) from mirror {url}" in out.stderr
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(p.sha256 for p in load_pins())

    # One altered file on the mirror: refused (exit 1), naming the file and both digests.
    pin = next(p for p in load_pins() if p.name == ALTERED)
    with (directory / ALTERED).open("a") as fh:
        fh.write("# one more line\n")
    out = lint(clone, tmp_path / "cache-2", url)
    assert out.returncode == 1, out.stdout + out.stderr
    refusal = out.stderr.strip().splitlines()[-1]
    assert refusal.startswith(f"sluice: refused: {ALTERED} from {url}{ALTERED} has sha256 ")
    assert f"pins {pin.sha256}" in refusal
    assert not (tmp_path / "cache-2" / pin.sha256).exists()

    server.terminate()
    server.wait(timeout=10)
    # Warm cache, no network: passes, with --offline and without (nothing needs fetching).
    for args in (("--offline",), ()):
        out = lint(clone, tmp_path / "cache", url, *args)
        assert out.returncode == 0, out.stdout + out.stderr
        assert "fetching" not in out.stderr

    # Server down and an empty cache: exit 2, one line naming the URL and the way to work offline.
    out = lint(clone, tmp_path / "cache-3", url)
    assert out.returncode == 2, out.stdout + out.stderr
    error = out.stderr.strip().splitlines()[-1]
    assert error.startswith(f"sluice: error: cannot download {url}") and "--offline" in error
