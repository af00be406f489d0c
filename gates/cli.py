"""The `sluice` command: a thin dispatcher over one module per verb.

Each verb module exposes `register(subparsers)` and keeps its heavy imports (mlflow, kfp,
sklearn) inside the handler, so `sluice lint` does not pay for importing MLflow.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ml.errors import SluiceError

# Order is the flow: data -> train -> gate -> promote -> deliver.
VERB_MODULES = (
    "ml.cli",
    "gates.cli_gate",
    "gates.promotion.cli",
    "gates.lint.cli",
    "gates.supply_chain.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sluice",
        description="Ship ML models to Kubernetes only when the evidence says it is safe.",
    )
    sub = parser.add_subparsers(dest="verb", metavar="VERB", required=True)
    for name in VERB_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SluiceError as exc:
        print(f"sluice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("sluice: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
