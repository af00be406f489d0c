"""One Katib trial: `python -m ml.tuning.trial --model M --set NAME=VALUE ...` in the trainer image.

The same objective as a local trial (`ml.tuning.objective`), on the snapshot the Experiment names,
with the parameter values Katib substituted into the arguments. It prints the running
cross-validated score after each fold as `<metric>=<value>`, the line format Katib's StdOut metrics
collector parses (its default filter `([\\w|-]+)\\s*=\\s*([+-]?\\d*(\\.\\d+)?([Ee][+-]?\\d+)?)`);
nothing else it prints looks like that. The search space inside the image must be the one the
Experiment was rendered from (`--space-sha256`), else the trial refuses to run: the image and the
Experiment would disagree about what the values mean.

Exit 0 with the score printed, 2 for bad input (Katib counts both a non-zero exit and a missing
metric as a failed trial).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sluice.errors import SluiceError


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ml.tuning.trial", description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--space-sha256", required=True, help="sha256 of the search space rendered")
    parser.add_argument("--data", required=True)
    parser.add_argument("--contract", required=True)
    parser.add_argument("--set", action="append", default=[], metavar="NAME=VALUE", dest="assignments")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, out=sys.stdout) -> float:
    from ml.tuning.objective import cross_validate, load_split
    from ml.tuning.space import default_path, load

    space = load(default_path(args.model))
    if space.sha256 != args.space_sha256:
        raise SluiceError(
            f"the search space in this image ({space.path.name}, sha256 {space.sha256[:12]}) is not the one "
            "the "
            f"Experiment was rendered from ({args.space_sha256[:12]}): render the Experiment again"
        )
    assignments: dict[str, str] = {}
    for item in args.assignments:
        name, sep, value = item.partition("=")
        if not sep:
            raise SluiceError(f"--set {item!r}: expected NAME=VALUE")
        assignments[name] = value
    params = space.parse_assignments(assignments)
    split = load_split(Path(args.data), Path(args.contract), space.candidate)

    def report(_step: int, value: float) -> None:
        out.write(f"{space.metric}={value:.6f}\n")
        out.flush()

    return cross_validate(split, params, space.metric, space.folds, report)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        run(args)
    except SluiceError as exc:
        print(f"sluice: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
