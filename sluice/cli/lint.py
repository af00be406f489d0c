"""`sluice lint [PATH ...] [--crds DIR | --crd-mirror URL] [--offline] [--format text|json] [--explain]`.

Exit 0 when clean (warnings allowed), 1 on any error (or a pinned schema whose sha256 does not
match), 2 on bad usage (a path that does not exist) or a schema that cannot be fetched: the same
contract as the gates, so CI and the Tekton lint task need no special casing.

CRD schemas: `--crds DIR` or $SLUICE_CRDS_DIR (a directory of manifests), else the files pinned in
sluice/lint/crd-pins.yaml, downloaded once into the user cache and reused offline
(`--crd-mirror URL` / $SLUICE_CRD_MIRROR fetch them from a mirror laid out by name).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sluice.errors import SluiceError

if TYPE_CHECKING:
    from sluice.lint.crds import CrdSource


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    parser = subparsers.add_parser(
        "lint",
        help=summary,
        description="Prove the repository is deliverable: YAML parses without duplicate keys, every "
        "Kubernetes object validates (built-ins against Kubernetes' schemas, custom kinds against "
        "upstream CRDs), every kustomization renders, every image is pinned by digest, Dockerfiles "
        "pass hadolint and Tekton resources cross-reference.",
    )
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="PATH",
        help="files or folders to lint (default: the repository's deliverable folders)",
    )
    parser.add_argument(
        "--crds",
        type=Path,
        metavar="DIR",
        help="directory of CRD manifests (default: $SLUICE_CRDS_DIR, else the pinned schemas)",
    )
    parser.add_argument(
        "--crd-mirror",
        metavar="URL",
        help="fetch pinned schemas from URL/<name> instead of upstream (default: $SLUICE_CRD_MIRROR)",
    )
    parser.add_argument(
        "--offline",
        action="store_true",
        help="never download: use the pinned schemas already in the cache, and name any that are missing",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="list the schemas and tools used and where they came from, then exit",
    )
    parser.set_defaults(func=run_lint)


@dataclass(frozen=True)
class CrdChoice:
    """Which CRDs a run uses and a phrase saying which setting chose them."""

    directory: Path | None  # --crds / $SLUICE_CRDS_DIR; None: the pinned schemas
    origin: str
    mirror: str | None = None


def choose_crds(args: argparse.Namespace) -> CrdChoice:
    from sluice.lint import pins

    if args.crds is not None:
        return CrdChoice(args.crds.resolve(), "from --crds")
    env = os.environ.get("SLUICE_CRDS_DIR")
    if env:
        return CrdChoice(Path(env).resolve(), "from $SLUICE_CRDS_DIR")
    pinned = f"pinned in {pins.PINS_SHOWN}"
    from_env = pins.mirror_from_env()
    for mirror in (args.crd_mirror, from_env):
        if mirror and not mirror.startswith(("http://", "https://")):
            raise SluiceError(f"the CRD mirror must be an http(s) URL, got {mirror!r}")
    if args.crd_mirror:
        return CrdChoice(None, f"{pinned}, from mirror {args.crd_mirror}", args.crd_mirror)
    if from_env:
        return CrdChoice(None, f"{pinned}, from mirror {from_env} (${pins.MIRROR_ENV})", from_env)
    return CrdChoice(None, f"{pinned}, from their upstream URLs")


def crd_source(choice: CrdChoice, offline: bool) -> CrdSource:
    """The CrdSource of a run: the directory, or every pin resolved (fetched if need be) in the cache."""
    from sluice.lint import pins
    from sluice.lint.crds import CrdSource

    if choice.directory is not None:
        return CrdSource(choice.directory)
    all_pins = pins.load_pins()
    resolved = pins.resolve(
        all_pins, offline=offline, mirror=choice.mirror, progress=lambda line: print(line, file=sys.stderr)
    )
    return CrdSource.pinned(resolved, all_pins)


def _root() -> Path:
    from sluice.git import work_tree

    return (work_tree() or Path.cwd()).resolve()


def run_lint(args: argparse.Namespace) -> int:
    choice = choose_crds(args)
    root = _root()
    if args.explain:
        from sluice.lint.explain import explain

        print(explain(root, choice.directory, choice.origin))
        return 0

    from sluice.lint.engine import run

    source = crd_source(choice, args.offline)
    report = run(list(args.paths), root, source)
    errors, warnings = len(report.errors), len(report.warnings)
    if args.format == "json":
        json.dump(
            {
                "ok": errors == 0,
                "problems": [p.to_dict() for p in report.problems],
                "summary": {
                    "errors": errors,
                    "warnings": warnings,
                    **report.stats,
                    "crds_dir": str(source.directory),
                    "crds": choice.origin,
                },
                "schemas_used": report.schemas_used,
            },
            sys.stdout,
            indent=2,
        )
        sys.stdout.write("\n")
    else:
        for problem in report.problems:
            suffix = "" if problem.severity == "error" else " [warning]"
            print(problem.render() + suffix)
        s = report.stats
        print(
            f"sluice lint: {errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)} "
            f"({s['files']} files, {s['objects']} objects, {s['kustomizations_rendered']} kustomizations "
            f"rendered, {s['rendered_objects']} rendered objects, {s['dockerfiles']} Dockerfiles) "
            f"in {s['seconds']:.2f}s"
        )
    return 1 if errors else 0
