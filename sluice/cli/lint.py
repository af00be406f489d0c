"""`sluice lint [PATH ...] [--crds DIR] [--format text|json] [--explain]`.

Exit 0 when clean (warnings allowed), 1 on any error, 2 on bad usage (a path that does not
exist): the same contract as the gates, so CI and the Tekton lint task need no special casing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


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
        help="directory of CRD manifests (default: $SLUICE_CRDS_DIR, else <shared>/schemas/crds)",
    )
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.add_argument(
        "--explain",
        action="store_true",
        help="list the schemas and tools used and where they came from, then exit",
    )
    parser.set_defaults(func=run_lint)


def resolve_crds_dir(explicit: Path | None) -> tuple[Path, str]:
    """The CRD directory and a phrase saying which setting chose it."""
    if explicit is not None:
        return explicit.resolve(), "from --crds"
    env = os.environ.get("SLUICE_CRDS_DIR")
    if env:
        return Path(env).resolve(), "from $SLUICE_CRDS_DIR"
    from sluice.paths import shared_dir

    return shared_dir() / "schemas" / "crds", "default: <shared>/schemas/crds"


def _root() -> Path:
    from sluice.git import work_tree

    return (work_tree() or Path.cwd()).resolve()


def run_lint(args: argparse.Namespace) -> int:
    crds_dir, origin = resolve_crds_dir(args.crds)
    root = _root()
    if args.explain:
        from sluice.lint.explain import explain

        print(explain(root, crds_dir, origin))
        return 0

    from sluice.lint.engine import run

    report = run(list(args.paths), root, crds_dir)
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
                    "crds_dir": str(crds_dir),
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
