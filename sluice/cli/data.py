"""`sluice data demo --out DIR`: the seeded credit-default demo data set and its contract."""

from __future__ import annotations

import argparse

from sluice.errors import SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    data = subparsers.add_parser("data", help=summary)
    data_sub = data.add_subparsers(dest="data_verb", metavar="ACTION", required=True)
    demo = data_sub.add_parser(
        "demo", help="write the seeded credit-default demo (reference, current, contract)"
    )
    demo.add_argument("--out", required=True, help="directory to write into")
    demo.add_argument("--seed", type=int, default=None, help="generator seed (default: the demo's own)")
    demo.add_argument("--reference-rows", type=int, default=None)
    demo.add_argument("--current-rows", type=int, default=None)
    demo.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from ml.data import demo

    settings = {
        "seed": demo.DEFAULT_SEED if args.seed is None else args.seed,
        "reference_rows": demo.REFERENCE_ROWS if args.reference_rows is None else args.reference_rows,
        "current_rows": demo.CURRENT_ROWS if args.current_rows is None else args.current_rows,
    }
    if settings["reference_rows"] < 1 or settings["current_rows"] < 1:
        raise SluiceError("--reference-rows and --current-rows must be at least 1")
    files = demo.write_demo(args.out, **settings)
    for name, sha in files.sha256s().items():
        print(f"{sha}  {files.reference.parent / name}")
    return 0
