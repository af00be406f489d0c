"""`sluice lint --explain`: which schemas and tools judge the repository, and where they came from.

A lint result is only as trustworthy as its schemas, so the provenance is printed, not implied:
the Kubernetes version and package that supply the built-in schemas, every CRD file with the
upstream commit its SOURCES.md records, and the two ways to build such a directory yourself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from sluice.lint import core_schemas, tekton
from sluice.lint.crds import load_crds
from sluice.lint.validate import discover_sluice_schemas

# Proposed upstream releases whose CRDs match the commits in ../shared/schemas/crds/SOURCES.md.
# (Kept in one place so the README and --explain cannot drift apart.)
PINNED_RELEASES = {
    "tekton-pipeline": "v1.15.0",
    "tekton-triggers": "v0.37.0",
    "argo-cd": "v3.5.0",
    "kserve": "v0.18.1",
    "kyverno": "v1.18.2",
}

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


def fill_from_releases() -> str:
    p = PINNED_RELEASES
    return f"""\
  2. From the upstream release manifests at the versions the README pins (sluice lint picks the
     CustomResourceDefinitions out of a full install manifest and ignores the rest):
       mkdir -p crds
       curl -fsSLo crds/tekton-pipeline.yaml \\
         https://infra.tekton.dev/tekton-releases/pipeline/previous/{p["tekton-pipeline"]}/release.yaml
       curl -fsSLo crds/tekton-triggers.yaml \\
         https://infra.tekton.dev/tekton-releases/triggers/previous/{p["tekton-triggers"]}/release.yaml
       for crd in application applicationset appproject; do
         curl -fsSLo crds/argo-cd-$crd.yaml \\
           https://raw.githubusercontent.com/argoproj/argo-cd/{p["argo-cd"]}/manifests/crds/$crd-crd.yaml
       done
       for crd in inferenceservices servingruntimes clusterservingruntimes; do
         curl -fsSLo crds/kserve-$crd.yaml \\
           https://raw.githubusercontent.com/kserve/kserve/{p["kserve"]}/config/crd/full/serving.kserve.io_$crd.yaml
       done
       curl -fsSLo crds/kyverno.yaml \\
         https://github.com/kyverno/kyverno/releases/download/{p["kyverno"]}/install.yaml
       sluice lint --crds crds"""


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


def explain(root: Path, crds_dir: Path, crds_origin: str) -> str:
    lines = ["sluice lint: where the schemas come from", ""]
    lines += [
        f"Kubernetes built-in kinds: Kubernetes {core_schemas.KUBERNETES_VERSION} strict schemas from "
        f"kubernetes-validate {core_schemas.package_version()}",
        f"  {core_schemas.definitions_path()}",
        f"  ({len(core_schemas.core_kinds())} apiVersion/kind pairs; unknown fields rejected like "
        "kubectl --validate=strict)",
        "",
        f"Custom resources: CRD directory {crds_dir} ({crds_origin})",
    ]
    index = load_crds(crds_dir)
    if index is None:
        lines.append(
            "  MISSING: custom kinds cannot be validated and are reported as errors (rule crd-missing)."
        )
    else:
        sources = _sources(crds_dir)
        for file, kinds in sorted(index.files.items()):
            folder = file.split("/")[0] if "/" in file else ""
            origin = sources.get(folder, "source not recorded (no SOURCES.md row)")
            lines.append(f"  {file}: {', '.join(sorted(set(kinds)))}")
            lines.append(f"      from {origin}")
        for problem in index.problems:
            lines.append(f"  unreadable: {problem}")
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
        fill_from_releases(),
        "  Add any other CRD manifest the same way; every *.yaml under the directory is read.",
    ]
    return "\n".join(lines)
