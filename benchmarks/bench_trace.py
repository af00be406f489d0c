"""How long `sluice trace` takes for one model with a warm MLflow server (target: ≤ 2 s).

Builds the world the tests trace (tests/sluice/trace/conftest.py: a version registered with the
pipeline's tags and gate attempts, promoted to staging on a bare git remote, its serving image
signed in a loopback docker-registry), then prints, measured in the same run (medians of N):
  * `trace()` in-process, warm (imports done, server warm): the walk itself, all six hops;
  * `sluice trace` as a fresh process, as people run it (interpreter start and imports included);
  * anchors: `sluice status` (git + MLflow aliases, no evidence), `import mlflow` alone (what every
    process that talks to MLflow pays first) and `sluice verify` (the image hop alone), each a
    fresh process.

    python benchmarks/bench_trace.py [--runs 5] [--tracking-uri URL]

Without --tracking-uri an `mlflow server` on SQLite is started in a temp dir (the tests use one on
PostgreSQL; point --tracking-uri at such a server to measure that).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
TARGET_SECONDS = 2.0


def _median(fn, runs: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), times


def _process(args: list[str], ok: tuple[int, ...] = (0,)) -> None:
    out = subprocess.run([sys.executable, "-m", "sluice", *args], capture_output=True, text=True, check=False)
    if out.returncode not in ok:
        raise SystemExit(f"sluice {args[0]} exited {out.returncode}: {out.stdout}{out.stderr}")


def _import_mlflow() -> None:
    subprocess.run([sys.executable, "-c", "import mlflow"], check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tracking-uri", help="an MLflow server to use (default: start one on SQLite)")
    args = parser.parse_args()

    from tests.conftest import GIT_IDENTITY, start_mlflow_server, start_registry
    from tests.sluice.promotion.conftest import make_signed_images
    from tests.sluice.trace.conftest import build_world

    os.environ.update(GIT_IDENTITY)
    procs = []
    with tempfile.TemporaryDirectory(prefix="bench-trace-") as tmp:
        base = Path(tmp)
        try:
            url = args.tracking_uri
            if url is None:
                (base / "mlflow").mkdir()
                server, url = start_mlflow_server(
                    f"sqlite:///{base / 'mlflow' / 'mlflow.db'}",
                    base / "mlflow" / "artifacts",
                    base / "mlflow.log",
                )
                procs.append(server)
            (base / "registry").mkdir()
            registry, address = start_registry(base / "registry")
            procs.append(registry)
            (base / "world").mkdir()
            world = build_world(url, make_signed_images(address), base / "world")
            return _measure(world, args.runs)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=20)


def _measure(world, runs: int) -> int:
    from sluice.promotion.signatures import key_trust
    from sluice.trace.hops import exit_code
    from sluice.trace.walk import Request, trace

    common = ["--repo", str(world.gitops.user), "--tracking-uri", world.url]
    signed = ["--key", str(world.key), "--allow-insecure-loopback"]
    request = Request(
        repo=world.gitops.user,
        tracking_uri=world.url,
        model=world.model,
        env="staging",
        trust=key_trust(world.images.key_pem),
        allow_insecure_loopback=True,
    )

    def walk() -> None:
        if exit_code(trace(request)) != 0:
            raise SystemExit("the benchmark's trace does not agree: run the tests")

    walk()  # warm: imports, connections, the server's caches
    rows = [
        ("trace() in-process, warm", *_median(walk, runs)),
        (
            "sluice trace (fresh process)",
            *_median(
                lambda: _process(["trace", "--model", world.model, "--env", "staging", *common, *signed]),
                runs,
            ),
        ),
        ("anchor: sluice status (fresh process)", *_median(lambda: _process(["status", *common]), runs)),
        ("anchor: python -c 'import mlflow'", *_median(_import_mlflow, runs)),
        (
            "anchor: sluice verify (fresh process)",
            *_median(lambda: _process(["verify", world.images.signed, *signed]), runs),
        ),
    ]
    load = os.getloadavg()
    print(f"sluice trace, one model, warm MLflow server at {world.url} ({runs} runs, medians)")
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")
    for name, median, times in rows:
        spread = f"{min(times):.2f}-{max(times):.2f}"
        print(f"  {name:<40} {median:6.2f} s   (min-max {spread} s)")
    warm = rows[0][1]
    verdict = "meets" if warm <= TARGET_SECONDS else "misses"
    print(
        f"target: trace ≤ {TARGET_SECONDS:.0f} s, warm server: the in-process walk {verdict} it ({warm:.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
