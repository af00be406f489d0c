"""`sluice trace`: what an environment runs, walked back to its data, code, evidence and signature.

    sluice trace --model M --env staging|production [--ref BRANCH|COMMIT]
    sluice trace --model M --version V
    sluice trace IMAGE@sha256:…

Exit codes: 0 every verifiable hop agrees, 1 a hop disagrees (named on its ✘ line), 2 usage error
or a source that could not be read (MLflow or the registry down: a ✘ line, the rest still prints).
The walking lives in `sluice.trace`; this module only reads options and prints.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sluice.cli.promotion_options import git_options, mlflow_options
from sluice.cli.signing_options import keyless_options, registry_options

FORMATS = ("text", "json", "markdown")


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    p = subparsers.add_parser(
        "trace",
        help=summary,
        description="Walk overlay -> MLflow version -> evidence -> code -> data -> image signature, "
        "verifying each hop. Exit 0 all verifiable hops agree, 1 one disagrees, 2 usage error or "
        "a source could not be read.",
    )
    p.add_argument(
        "image", nargs="?", metavar="IMAGE@sha256:…", help="trace whatever overlay serves this image"
    )
    p.add_argument("--model", help="registered model (and apps/<model>) name")
    p.add_argument("--env", help="staging or production: trace what its overlay holds")
    p.add_argument("--version", help="trace this version (and every environment holding it)")
    p.add_argument("--ref", help="git branch or commit to read the overlays at (default: --remote/--branch)")
    p.add_argument(
        "--data", metavar="PATH", help="the snapshot to re-hash (default: where the data gate read it)"
    )
    p.add_argument(
        "--code-repo",
        type=Path,
        metavar="PATH",
        help="repository holding the training code, when not --repo (the code commit is looked up there too)",
    )
    p.add_argument(
        "--artifact-root",
        help="object-store root behind mlflow-artifacts:/ URIs (default: $SLUICE_ARTIFACT_ROOT or "
        "s3://mlflow-artifacts)",
    )
    p.add_argument("--key", metavar="cosign.pub", help="cosign public key (default: $SLUICE_COSIGN_PUB)")
    p.add_argument("--format", choices=FORMATS, default="text")
    p.add_argument("--verbose", "-v", action="store_true", help="text format: print what each hop found")
    git_options(p)
    mlflow_options(p)
    keyless_options(p)
    registry_options(p)
    p.set_defaults(func=run_trace)


def run_trace(args: argparse.Namespace) -> int:
    from sluice import paths
    from sluice.cli.gate import check_reachable
    from sluice.cli.promotion_options import signature_trust, tracking_uri
    from sluice.promotion import promote
    from sluice.trace import report
    from sluice.trace.hops import exit_code
    from sluice.trace.walk import Request, trace

    request = Request(
        repo=Path(args.repo),
        tracking_uri=tracking_uri(args),
        model=args.model,
        env=args.env,
        version=args.version,
        image=args.image,
        ref=args.ref,
        remote=args.remote,
        branch=args.branch,
        artifact_root=args.artifact_root
        or os.environ.get(promote.ARTIFACT_ROOT_ENV)
        or promote.DEFAULT_ARTIFACT_ROOT,
        data=args.data,
        code_repo=args.code_repo,
        home=paths.home(args.home).root,
        trust=signature_trust(args),
        allow_insecure_loopback=args.allow_insecure_loopback,
        docker_config=args.docker_config,
    )
    traces = trace(request, probe=check_reachable)
    if args.format == "json":
        print(report.to_json(traces))
    elif args.format == "markdown":
        print(report.to_markdown(traces))
    else:
        print(report.to_text(traces, verbose=args.verbose))
    return exit_code(traces)
