"""The `sluice` command: a lazy table of verbs, one module per verb.

Only the invoked verb's module is imported (pip does the same with its commands), so
`sluice --help` and `sluice lint` never pay for importing kfp, MLflow or scikit-learn, and each
verb module keeps its heavy imports inside its handler. `SluiceError` becomes one line on stderr
and exit code 2; `Refused` (a verdict) becomes `sluice: refused: <reason>` and exit code 1.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NamedTuple

from sluice.errors import Refused, SluiceError


class Verb(NamedTuple):
    module: str
    summary: str


# Order is the flow: data -> train -> gate -> promote -> deliver.
VERBS: dict[str, Verb] = {
    "data": Verb("sluice.cli.data", "data utilities (the seeded demo data set)"),
    "run": Verb("sluice.cli.run", "train on the local KFP runner, gate, register, promote to a local branch"),
    "submit": Verb(
        "sluice.cli.submit", "compile the pipeline for a trainer image and submit it to Kubeflow Pipelines"
    ),
    "gate": Verb("sluice.cli.gate", "run the data or model gate and write evidence"),
    "evidence": Verb(
        "sluice.cli.evidence", "list a model's gate attempts from MLflow, or show one verified by digest"
    ),
    "promote": Verb("sluice.cli.promote", "commit a gated model version into an environment's overlay"),
    "rollback": Verb(
        "sluice.cli.rollback", "restore the previously promoted version of a model in an environment"
    ),
    "status": Verb(
        "sluice.cli.status", "versions git holds per model and environment, MLflow aliases, any mismatch"
    ),
    "lint": Verb(
        "sluice.cli.lint",
        "validate manifests, kustomizations, images and Dockerfiles against upstream schemas",
    ),
    "keygen": Verb(
        "sluice.cli.keygen", "generate a cosign-format key pair (PREFIX.key encrypted, PREFIX.pub)"
    ),
    "sign": Verb(
        "sluice.cli.sign", "sign (and attest) an image by digest in cosign's tag-based format (laptop/tests)"
    ),
    "verify": Verb(
        "sluice.cli.verify", "verify cosign signatures (and gate-evidence attestations) of an image by digest"
    ),
}


def invoked_verb(argv: list[str]) -> str | None:
    """The first word that is not an option: the verb, if it is one."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in VERBS else None


def build_parser(verb: str | None = None) -> argparse.ArgumentParser:
    """The top-level parser; only `verb` (all verbs when None) gets its real arguments."""
    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Ship ML models to Kubernetes only when the evidence says it is safe.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name, spec in VERBS.items():
        if verb is None or name == verb:
            importlib.import_module(spec.module).register(sub, spec.summary)
        else:
            sub.add_parser(name, help=spec.summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    verb = invoked_verb(argv)
    args = build_parser(verb or "").parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except Refused as exc:
        print(f"sluice: refused: {exc}", file=sys.stderr)
        return 1
    except SluiceError as exc:
        print(f"sluice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sluice: interrupted", file=sys.stderr)
        return 130
