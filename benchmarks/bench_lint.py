"""How long `sluice lint` takes on the whole repository (target: ≤ 3 s on a 2-core machine).

Measured end to end as users run it (a fresh `python -m sluice lint` process: interpreter start,
imports, rendering every kustomization with kubectl, hadolint, tekton-lint if installed), once with
empty caches (the pinned schemas downloaded and sha256-checked, then converted) and then warm
(median of N runs).

    python benchmarks/bench_lint.py [--runs 5] [--crds DIR | --crd-mirror URL]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET_SECONDS = 3.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def lint_once(env: dict[str, str]) -> tuple[float, float, dict]:
    """Wall seconds, CPU seconds (lint + kubectl/hadolint/tekton-lint children) and the summary.

    CPU seconds are the figure that survives a busy machine; wall time on an idle 2-core machine
    is roughly CPU / 2 plus the longest single tool run.
    """
    cpu_before = _children_cpu()
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-m", "sluice", "lint", "--format", "json"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    cpu = _children_cpu() - cpu_before
    if out.returncode not in (0, 1):
        raise SystemExit(f"sluice lint failed to run (exit {out.returncode}): {out.stderr.strip()}")
    return elapsed, cpu, json.loads(out.stdout)["summary"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--crds", type=Path, help="CRD directory (default: the pinned schemas)")
    parser.add_argument("--crd-mirror", metavar="URL", help="fetch the pinned schemas from this mirror")
    args = parser.parse_args()

    env = dict(os.environ)
    if args.crds:
        env["SLUICE_CRDS_DIR"] = str(args.crds.resolve())
    if args.crd_mirror:
        env["SLUICE_CRD_MIRROR"] = args.crd_mirror
    with tempfile.TemporaryDirectory(prefix="bench-lint-cache-") as cache:
        env["SLUICE_LINT_CACHE"] = cache
        env["SLUICE_CRD_CACHE"] = str(Path(cache) / "crds")
        cold, cold_cpu, summary = lint_once(env)
        runs = [lint_once(env) for _ in range(args.runs)]
    warm = [elapsed for elapsed, _, _ in runs]
    warm_cpu = statistics.median(cpu for _, cpu, _ in runs)
    engine = statistics.median(s["seconds"] for _, _, s in runs)
    load = os.getloadavg()[0]

    median = statistics.median(warm)
    print(
        f"repository: {summary['files']} files, {summary['objects']} objects, "
        f"{summary['kustomizations_rendered']} kustomizations rendered "
        f"({summary['rendered_objects']} objects), "
        f"{summary['dockerfiles']} Dockerfiles; {summary['errors']} errors, {summary['warnings']} warnings"
    )
    print(f"machine: {os.cpu_count()} cores, 1-min load average {load:.1f} (wall times inflate under load)")
    print(f"cold (empty caches, schemas fetched and converted): {cold:.2f} s wall, {cold_cpu:.2f} s CPU")
    print(
        f"warm: median {median:.2f} s, min {min(warm):.2f} s, max {max(warm):.2f} s over {args.runs} runs "
        f"(lint engine alone: median {engine:.2f} s); CPU median {warm_cpu:.2f} s"
    )
    print(f"target ≤ {TARGET_SECONDS:.1f} s warm: {'met' if median <= TARGET_SECONDS else 'NOT met'}")
    return 0 if median <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
