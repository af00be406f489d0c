"""The lock is current: uv.lock matches pyproject.toml, and the hashed exports match uv.lock.

Images install requirements.lock with --require-hashes and CI installs requirements-dev.lock, so a
dependency edited in pyproject.toml without re-locking (`tools/relock.sh`) would silently not
reach them. Three checks, all offline:
1. uv.lock records the project's own requirements (`metadata.requires-dist`, `requires-dev`,
   `provides-extras`); they must equal pyproject's. Pure Python: no uv, no network, no cache.
2. `uv lock --check --offline` (uv is pinned in the `test` extra): also covers `[tool.uv]`.
3. `uv export --frozen` of each requirements*.lock equals the committed file.
Each check is also shown to fail on a pyproject edited without re-locking.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parent.parent
RELOCK = "run tools/relock.sh (uv lock + the exports) and commit uv.lock with requirements*.lock"
# file -> the `uv export` options tools/relock.sh writes it with
EXPORTS = {
    "requirements.lock": ["--no-default-groups"],
    "requirements-dev.lock": ["--no-default-groups", "--extra", "test", "--extra", "lint"],
    "requirements-build.lock": ["--only-group", "build"],
    "requirements-tools.lock": ["--only-group", "tools"],
    "requirements-ci.lock": ["--only-group", "ci"],
}
Key = tuple[str, tuple[str, ...], str, str]


def _key(text: str, extra: str | None = None) -> Key:
    """A requirement as uv.lock records it: canonical name, extras, specifier, marker (+ its extra)."""
    req = Requirement(text)
    if extra:
        marker = f'extra == "{extra}"' + (f" and ({req.marker})" if req.marker else "")
        extras = f"[{','.join(sorted(req.extras))}]" if req.extras else ""
        req = Requirement(f"{req.name}{extras}{req.specifier} ; {marker}")
    return canonicalize_name(req.name), tuple(sorted(req.extras)), str(req.specifier), str(req.marker or "")


def declared(pyproject: dict[str, Any]) -> dict[str, set]:
    project = pyproject["project"]
    found: dict[str, set] = {"dependencies": {_key(d) for d in project.get("dependencies", [])}}
    for extra, deps in project.get("optional-dependencies", {}).items():
        found["dependencies"] |= {_key(d, extra) for d in deps}
    found["extras"] = set(project.get("optional-dependencies", {}))
    for group, deps in pyproject.get("dependency-groups", {}).items():
        found[f"group {canonicalize_name(group)}"] = {_key(d) for d in deps}
    return found


def _locked_key(entry: dict[str, Any]) -> Key:
    text = entry["name"] + (f"[{','.join(entry['extras'])}]" if entry.get("extras") else "")
    text += entry.get("specifier", "") + (f" ; {entry['marker']}" if entry.get("marker") else "")
    return _key(text)


def recorded(lock: dict[str, Any], project: str) -> dict[str, set]:
    package = next(p for p in lock["package"] if p["name"] == canonicalize_name(project))
    meta = package.get("metadata", {})
    found: dict[str, set] = {"dependencies": {_locked_key(e) for e in meta.get("requires-dist", [])}}
    found["extras"] = set(meta.get("provides-extras", []))
    for group, entries in meta.get("requires-dev", {}).items():
        found[f"group {canonicalize_name(group)}"] = {_locked_key(e) for e in entries}
    return found


def differences(pyproject_path: Path, lock_path: Path) -> list[str]:
    pyproject = tomllib.loads(pyproject_path.read_text())
    want = declared(pyproject)
    got = recorded(tomllib.loads(lock_path.read_text()), pyproject["project"]["name"])
    return [
        f"{what}: pyproject.toml has {sorted(want.get(what, set()) - got.get(what, set()))}, "
        f"uv.lock has {sorted(got.get(what, set()) - want.get(what, set()))}"
        for what in sorted(set(want) | set(got))
        if want.get(what, set()) != got.get(what, set())
    ]


@pytest.fixture
def stale_project(tmp_path: Path) -> Path:
    """A copy of pyproject.toml + uv.lock with one dependency range edited and no re-lock."""
    shutil.copy(REPO / "uv.lock", tmp_path / "uv.lock")
    text = (REPO / "pyproject.toml").read_text()
    assert '"scipy>=1.17,<1.18"' in text
    (tmp_path / "pyproject.toml").write_text(text.replace('"scipy>=1.17,<1.18"', '"scipy>=1.17.1,<1.18"'))
    return tmp_path


def test_uv_lock_records_what_pyproject_declares() -> None:
    problems = differences(REPO / "pyproject.toml", REPO / "uv.lock")
    assert problems == [], f"uv.lock is stale against pyproject.toml: {RELOCK}\n" + "\n".join(problems)


def test_the_offline_comparison_catches_an_edit_without_re_locking(stale_project: Path) -> None:
    problems = differences(stale_project / "pyproject.toml", stale_project / "uv.lock")
    assert problems == [
        "dependencies: pyproject.toml has [('scipy', (), '<1.18,>=1.17.1', '')], "
        "uv.lock has [('scipy', (), '<1.18,>=1.17', '')]"
    ]


def _uv(args: list[str], cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("uv")
    if exe is None:
        pytest.skip("uv not installed (it is pinned in the test extra: pip install -e '.[test]')")
    env = {**os.environ, "UV_CACHE_DIR": str(cache), "UV_NO_CONFIG": "1", "UV_OFFLINE": "1"}
    return subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=120, env=env)


def test_uv_agrees_the_lock_is_current(tmp_path: Path) -> None:
    out = _uv(["lock", "--check", "--offline"], REPO, tmp_path / "uv-cache")
    assert out.returncode == 0, f"uv.lock is stale against pyproject.toml: {RELOCK}\n{out.stderr[-2000:]}"


def test_uv_refuses_a_lock_that_pyproject_has_moved_away_from(stale_project: Path, tmp_path: Path) -> None:
    out = _uv(["lock", "--check", "--offline"], stale_project, tmp_path / "uv-cache")
    assert out.returncode != 0


def _body(text: str) -> str:
    """An export without uv's header comment (it names the output path)."""
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return "\n".join(lines)


@pytest.mark.parametrize("name", sorted(EXPORTS))
def test_each_export_is_what_uv_lock_gives(name: str, tmp_path: Path) -> None:
    out_file = tmp_path / name
    command = ["export", "--frozen", "--quiet", "--format", "requirements-txt", "--no-emit-project"]
    out = _uv([*command, *EXPORTS[name], "-o", str(out_file)], REPO, tmp_path / "uv-cache")
    assert out.returncode == 0, out.stderr
    committed = (REPO / name).read_text()
    assert _body(committed) == _body(out_file.read_text()), f"{name} does not match uv.lock: {RELOCK}"
    assert "--hash=sha256:" in committed


def test_every_pin_carries_hashes_for_pip_require_hashes() -> None:
    for name in EXPORTS:
        blocks = (REPO / name).read_text().split("\n")
        pins = [line for line in blocks if line and not line.startswith((" ", "#"))]
        assert pins, name
        for pin in pins:
            assert "==" in pin and pin.rstrip().endswith("\\"), f"{name}: {pin} has no --hash lines"


def test_relock_script_writes_exactly_the_exports_the_test_checks() -> None:
    script = (REPO / "tools" / "relock.sh").read_text()
    for name, options in EXPORTS.items():
        assert f"export_lock {name} {' '.join(options)}" in script


IMAGE_LOCKS = ("requirements-dev.lock", "requirements-tools.lock", "requirements-ci.lock")


def stale_image_locks(baked: Path) -> list[str]:
    """The locks a ci image recorded (SLUICE_IMAGE_LOCKS) that differ from the checkout's."""
    return [name for name in IMAGE_LOCKS if (baked / name).read_bytes() != (REPO / name).read_bytes()]


def test_the_ci_image_was_built_from_this_checkouts_locks() -> None:
    """In the ci image (which records the locks it was built from): a pull request that changes a lock
    cannot be tested with the old libraries; it needs a ci image built from its own locks."""
    baked = os.environ.get("SLUICE_IMAGE_LOCKS")
    if not baked:
        pytest.skip("not running in the ci image (SLUICE_IMAGE_LOCKS unset): no image locks to compare")
    stale = stale_image_locks(Path(baked))
    assert stale == [], (
        f"this ci image was built from another {', '.join(stale)} than the checkout's: build the ci target "
        "from this commit (the deliver pipeline does: its ci-image result) and pin it as the cluster's "
        "ci-image"
    )


def test_a_ci_image_built_from_another_lock_is_told_apart(tmp_path: Path) -> None:
    for name in IMAGE_LOCKS:
        shutil.copy(REPO / name, tmp_path / name)
    assert stale_image_locks(tmp_path) == []
    with (tmp_path / "requirements-dev.lock").open("a") as fh:
        fh.write("# re-locked\n")
    assert stale_image_locks(tmp_path) == ["requirements-dev.lock"]
