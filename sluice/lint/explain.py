"""`sluice lint --explain`: which schemas and tools judge the repository, and where they came from.

A lint result is only as trustworthy as its schemas, so the provenance is printed, not implied:
the Kubernetes version and package that supply the built-in schemas, every pinned CRD file with
its upstream repository, commit, URL and whether it is in the cache yet (or, with --crds DIR, each
file with the commit its SOURCES.md records), and the ways to build a CRD directory yourself.
Explaining never downloads anything.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from sluice.errors import SluiceError
from sluice.lint import core_schemas, tekton
from sluice.lint.crds import CrdIndex, CrdSource, load_crds
from sluice.lint.pins import PINS_SHOWN, Pin, cache_dir, cached, load_pins, resolve
from sluice.lint.validate import discover_sluice_schemas

FILL_FROM_CLUSTER = """\
  1. From your own cluster (what its API server really enforces):
       mkdir -p crds
       kubectl get crd \\
         tasks.tekton.dev pipelines.tekton.dev pipelineruns.tekton.dev taskruns.tekton.dev \\
         eventlisteners.triggers.tekton.dev triggerbindings.triggers.tekton.dev \\
         triggertemplates.triggers.tekton.dev triggers.triggers.tekton.dev \\
         applications.argoproj.io applicationsets.argoproj.io appprojects.argoproj.io \\
         inferenceservices.serving.kserve.io servingruntimes.serving.kserve.io \\
         clusterservingruntimes.serving.kserve.io \\
         clusterpolicies.kyverno.io policies.kyverno.io imagevalidatingpolicies.policies.kyverno.io \\
         -o yaml > crds/cluster.yaml
       sluice lint --crds crds"""


def fill_from_pins(pins: tuple[Pin, ...]) -> str:
    """The pinned files as curl commands: a CRD directory (or a mirror) laid out by name."""
    lines = [
        "  2. From the pinned upstream files (the same bytes `sluice lint` fetches; check them with",
        "     `sha256sum`, the digests are in " + PINS_SHOWN + "). The layout is also a mirror:",
        "     serve the directory over HTTP and set SLUICE_CRD_MIRROR=http://HOST:PORT/ (or --crd-mirror).",
    ]
    lines += [f"       curl --create-dirs -fsSLo crds/{pin.name} {pin.url}" for pin in pins]
    lines.append("       sluice lint --crds crds")
    return "\n".join(lines)


_NO_TEKTON_LINT = "not installed (npm install @ibm/tekton-lint)"


def _sources(crds_dir: Path) -> dict[str, str]:
    """folder → 'owner/repo @ commit (date)' from the table in SOURCES.md, when there is one."""
    path = crds_dir / "SOURCES.md"
    if not path.is_file():
        return {}
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0].endswith("/") and re.search(r"[0-9a-f]{40}", cells[3]):
            found[cells[0].rstrip("/")] = f"{cells[1]} @ {cells[3]}"
    return found


def _tool_version(command: list[str]) -> str:
    if shutil.which(command[0]) is None:
        return "not installed"
    try:
        out = subprocess.run(command, capture_output=True, text=True, check=False, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (out.stdout or out.stderr).strip()
    return " ".join(text.splitlines()[:2]) if text else "unknown version"


def _directory_lines(crds_dir: Path) -> list[str]:
    index = load_crds(crds_dir)
    if index is None:
        return ["  MISSING: custom kinds cannot be validated and are reported as errors (rule crd-missing)."]
    lines = []
    sources = _sources(crds_dir)
    for file, kinds in sorted(index.files.items()):
        folder = file.split("/")[0] if "/" in file else ""
        origin = sources.get(folder, "source not recorded (no SOURCES.md row)")
        lines.append(f"  {file}: {', '.join(sorted(set(kinds)))}")
        lines.append(f"      from {origin}")
    lines += [f"  unreadable: {problem}" for problem in index.problems]
    return lines


def _pinned_lines(pins: tuple[Pin, ...]) -> tuple[list[str], CrdIndex | None]:
    cache = cache_dir()
    lines = [f"  cache {cache}"]
    for pin in pins:
        src = pin.source
        ref = src.get("tag") or str(src.get("commit", ""))[:12]
        state = "cached" if cached(pin, cache) else "not cached yet (fetched on the next online run)"
        what = ", ".join(pin.kinds) + ("" if pin.is_crd else f" ({pin.format} document, not a CRD)")
        lines.append(f"  {pin.name}: {what}")
        lines.append(f"      from {src.get('repository')} @ {ref} ({src.get('commit')}) {src.get('path')}")
        lines.append(f"      {pin.url}  sha256 {pin.sha256}  {state}")
    try:
        index = CrdSource.pinned(resolve(pins, offline=True, cache=cache), pins).load()
    except SluiceError:
        index = None
    return lines, index


def explain(root: Path, crds_dir: Path | None, crds_origin: str) -> str:
    """The report; `crds_dir` None means the pinned schemas."""
    lines = ["sluice lint: where the schemas come from", ""]
    lines += [
        f"Kubernetes built-in kinds: Kubernetes {core_schemas.KUBERNETES_VERSION} strict schemas from "
        f"kubernetes-validate {core_schemas.package_version()}",
        f"  {core_schemas.definitions_path()}",
        f"  ({len(core_schemas.core_kinds())} apiVersion/kind pairs; unknown fields rejected like "
        "kubectl --validate=strict)",
        "",
    ]
    pins = load_pins()
    if crds_dir is None:
        lines.append(f"Custom resources: {crds_origin}")
        pinned, index = _pinned_lines(pins)
        lines += pinned
        lines += [f"  unreadable: {problem}" for problem in (index.problems if index else [])]
    else:
        lines.append(f"Custom resources: CRD directory {crds_dir} ({crds_origin})")
        lines += _directory_lines(crds_dir)
    lines += [
        "  Kubernetes semantics applied: x-kubernetes-preserve-unknown-fields, x-kubernetes-int-or-string,",
        "  x-kubernetes-embedded-resource, additionalProperties: false where properties are listed, root",
        "  metadata as ObjectMeta, null fields pruned; CEL rules (x-kubernetes-validations) are not",
        "  evaluated.",
        "",
        "Sluice's own kinds:",
    ]
    for (api_version, kind), path in sorted(discover_sluice_schemas(root).items()):
        lines.append(
            f"  {kind} {api_version}: {path.relative_to(root) if path.is_relative_to(root) else path}"
        )
    lines += [
        "",
        "Kustomize files (Kustomization, Component): sluice/lint/kustomization.schema.json",
        "  (the kustomize v5 field set; kustomize is not a Kubernetes API)",
        "",
        "Tools:",
        f"  kubectl kustomize: {_tool_version(['kubectl', 'version', '--client'])}",
        f"  hadolint: {_tool_version(['hadolint', '--version'])}",
        f"  tekton-lint: {tekton.tekton_lint_executable(root) or _NO_TEKTON_LINT}",
        "",
        "Filling a CRD directory yourself (pass it with --crds DIR or SLUICE_CRDS_DIR):",
        FILL_FROM_CLUSTER,
        fill_from_pins(pins),
        "  Add any other CRD manifest the same way; every *.yaml under the directory is read.",
    ]
    return "\n".join(lines)
