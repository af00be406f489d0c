"""Benchmark: Sluice's data + drift gate vs Evidently's DataDriftPreset, and alone at 10 M rows.

    python benchmarks/bench_drift.py                      # 1 M side by side, then 10 M alone
    python benchmarks/bench_drift.py --skip-peer          # no Evidently
    python benchmarks/bench_drift.py --large-rows 2000000 # smaller "large" run

Data: seeded, generated in memory; 20 float64 feature columns of four shapes (normal, lognormal,
uniform, exponential) plus a 0/1 label, the same number of rows in reference and current. In
the current snapshot f00-f03 are shifted (+0.5, +1, -0.75, +3 reference sigmas), f04-f06 are
scaled about their mean (x2, x0.5, x3), f07 is shifted by a negligible 0.05 sigma and the
rest are only redrawn. Both tools must flag exactly f00-f06.

The peer: Evidently 0.7.23 needs pandas < 3 and Sluice runs on pandas 3, so this script creates
its own virtualenv (under --cache-dir, default ~/.cache/sluice-bench) with
`pip install evidently==0.7.23 'pandas<3' pyarrow`, writes the 1 M frames to Parquet, and runs
`Report([DataDriftPreset()])` there in a subprocess, timing only `report.run` (not the read).

Last, for information, `run_data_gate` end to end from Parquet files (reading, typing against the
contract, every check, evidence JSON/Markdown/HTML written) at --e2e-rows.

Each measurement of ours runs in a fresh subprocess so that its peak RSS (ru_maxrss, which
includes generating the data) belongs to that size alone. Figures are medians of --repeats.
Targets (issue 3): >= 30x faster than Evidently at 1 M; <= 10 s and peak RSS <= 1.5x the data's
in-memory size at 10 M. The script prints figures; it does not assert them.
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

import numpy as np

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent.parent))

SEED = 20240701
N_FEATURES = 20
FAMILIES = ("normal", "lognormal", "uniform", "exponential")
# column index -> ("shift", sigmas) or ("scale", factor)
DRIFT = {
    0: ("shift", 0.5),
    1: ("shift", 1.0),
    2: ("shift", -0.75),
    3: ("shift", 3.0),
    4: ("scale", 2.0),
    5: ("scale", 0.5),
    6: ("scale", 3.0),
    7: ("shift", 0.05),
}
EXPECTED_DRIFTED = [f"f{i:02d}" for i in range(7)]
EVIDENTLY_VERSION = "0.7.23"

PEER_SCRIPT = r"""
import json, sys, time
import pandas as pd
from evidently import Report
from evidently.presets import DataDriftPreset
ref = pd.read_parquet(sys.argv[1]); cur = pd.read_parquet(sys.argv[2])
repeats = int(sys.argv[3])
times = []
for _ in range(repeats):
    report = Report([DataDriftPreset()])
    t0 = time.perf_counter()
    snapshot = report.run(current_data=cur, reference_data=ref)
    times.append(time.perf_counter() - t0)
drifted, methods = [], set()
for m in snapshot.dict()["metrics"]:
    cfg = m.get("config", {})
    if cfg.get("type", "").endswith("ValueDrift"):
        method = cfg.get("method", "")
        methods.add(method)
        value, threshold = m["value"], cfg["threshold"]
        is_p_value = "p_value" in method.lower() or "test" in method.lower()
        if (value < threshold) if is_p_value else (value >= threshold):
            drifted.append(cfg["column"])
import evidently
print(json.dumps({"seconds": times, "drifted": sorted(drifted), "methods": sorted(methods),
                  "evidently": evidently.__version__, "pandas": pd.__version__}))
"""


def _family_draw(rng: np.random.Generator, family: str, rows: int) -> tuple[np.ndarray, float, float]:
    """Values plus the family's true mean and sigma (for shifting/scaling in sigma units)."""
    if family == "normal":
        return rng.standard_normal(rows), 0.0, 1.0
    if family == "lognormal":
        s = 0.5
        return (
            rng.lognormal(0.0, s, rows),
            float(np.exp(s * s / 2)),
            float(np.sqrt((np.exp(s * s) - 1) * np.exp(s * s))),
        )
    if family == "uniform":
        return rng.random(rows), 0.5, float(np.sqrt(1 / 12))
    return rng.exponential(1.0, rows), 1.0, 1.0


def make_frames(rows: int):
    """Reference and current frames (float64 columns, no copies) and the benchmark contract."""
    import pandas as pd

    from ml.data.contract import parse_contract

    ref_cols, cur_cols = {}, {}
    for i in range(N_FEATURES):
        name = f"f{i:02d}"
        family = FAMILIES[i % len(FAMILIES)]
        ref_cols[name], _, _ = _family_draw(np.random.default_rng([SEED, i, 0]), family, rows)
        values, mean, sigma = _family_draw(np.random.default_rng([SEED, i, 1]), family, rows)
        kind, amount = DRIFT.get(i, (None, 0.0))
        if kind == "shift":
            values += amount * sigma
        elif kind == "scale":
            values -= mean
            values *= amount
            values += mean
        cur_cols[name] = values
    ref_cols["label"] = np.random.default_rng([SEED, 99, 0]).integers(0, 2, rows).astype(np.float64)
    cur_cols["label"] = np.random.default_rng([SEED, 99, 1]).integers(0, 2, rows).astype(np.float64)
    reference = pd.DataFrame(ref_cols, copy=False)
    current = pd.DataFrame(cur_cols, copy=False)
    doc = {
        "apiVersion": "sluice.dev/v1",
        "kind": "DataContract",
        "name": "bench-drift",
        "label": "label",
        "positive_class": 1,
        "columns": [{"name": f"f{i:02d}", "dtype": "float"} for i in range(N_FEATURES)]
        + [{"name": "label", "dtype": "integer", "min": 0, "max": 1}],
    }
    return reference, current, parse_contract(doc, Path("bench-drift.contract.yaml"))


def _peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def worker(rows: int, repeats: int, mode: str) -> dict:
    """Runs in a fresh process: generate, then time the gate `repeats` times."""
    from gates.checks.drift import drift_all
    from gates.data_gate import Snapshot, evaluate_data
    from gates.evidence import write_evidence
    from gates.gate_policy import load_policy, policy_record

    t0 = time.perf_counter()
    reference, current, contract = make_frames(rows)
    generate_s = time.perf_counter() - t0
    data_bytes = int(reference.memory_usage(deep=True).sum() + current.memory_usage(deep=True).sum())
    rss_after_data = _peak_rss_bytes()
    policy = load_policy()
    features = [(c.name, c.dtype) for c in contract.features]
    drift_times, gate_times, drifted = [], [], []
    for _ in range(repeats):
        t = time.perf_counter()
        results = drift_all(reference, current, features, policy["data"]["drift"])
        drift_times.append(time.perf_counter() - t)
        if mode == "gate":
            t = time.perf_counter()
            evidence = evaluate_data(contract, Snapshot.of(reference), Snapshot.of(current), policy)
            evidence["subject"] = {"model": contract.name, "code_commit": "benchmark"}
            evidence["policy"] = policy_record(policy)
            with tempfile.TemporaryDirectory() as out:
                write_evidence(evidence, out, "bench-evidence")
            gate_times.append(time.perf_counter() - t)
            drifted = evidence["drifted_features"]
    del results
    return {
        "rows": rows,
        "generate_s": generate_s,
        "data_bytes": data_bytes,
        "rss_after_data_bytes": rss_after_data,
        "peak_rss_bytes": _peak_rss_bytes(),
        "drift_s": drift_times,
        "gate_s": gate_times,
        "drifted": drifted,
        "checks": len(evidence["checks"]) if mode == "gate" else None,
    }


def write_files(rows: int, directory: Path) -> None:
    """Parquet snapshots and the contract YAML, for the end-to-end (files in, evidence out) run."""
    import yaml

    reference, current, contract = make_frames(rows)
    reference.to_parquet(directory / "reference.parquet")
    current.to_parquet(directory / "current.parquet")
    (directory / "contract.yaml").write_text(yaml.safe_dump(contract.raw, sort_keys=False))


def worker_e2e(directory: Path, repeats: int) -> dict:
    """`run_data_gate` on the files: reading, typing against the contract, all checks, evidence."""
    from gates.data_gate import run_data_gate

    times = []
    for i in range(repeats):
        t = time.perf_counter()
        evidence = run_data_gate(
            directory / "contract.yaml",
            directory / "reference.parquet",
            directory / "current.parquet",
            out_dir=directory / f"out-{i}",
        )
        times.append(time.perf_counter() - t)
    return {"seconds": times, "peak_rss_bytes": _peak_rss_bytes(), "drifted": evidence["drifted_features"]}


def run_e2e(rows: int, repeats: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-drift-e2e-") as tmp:
        subprocess.run([sys.executable, str(HERE), "--write-files", str(rows), "--dir", tmp], check=True)
        out = subprocess.run(
            [sys.executable, str(HERE), "--worker-e2e", tmp, "--repeats", str(repeats)],
            check=True,
            capture_output=True,
            text=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_worker(rows: int, repeats: int) -> dict:
    out = subprocess.run(
        [sys.executable, str(HERE), "--worker", str(rows), "--repeats", str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def ensure_peer_venv(cache_dir: Path) -> Path:
    venv = cache_dir / f"evidently-{EVIDENTLY_VERSION}"
    python = venv / "bin" / "python"
    probe = [str(python), "-c", "import evidently, pandas; assert pandas.__version__ < '3'"]
    if python.exists() and subprocess.run(probe, capture_output=True).returncode == 0:
        return python
    print(
        f"creating peer virtualenv {venv} (pip install evidently=={EVIDENTLY_VERSION} 'pandas<3' pyarrow)",
        flush=True,
    )
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", f"evidently=={EVIDENTLY_VERSION}", "pandas<3", "pyarrow"],
        capture_output=True,
        text=True,
    )
    if pip.returncode != 0:
        raise RuntimeError("pip install of the peer failed:\n" + pip.stderr[-2000:])
    return python


def run_peer(python: Path, rows: int, repeats: int, workdir: Path) -> dict:
    reference, current, _ = make_frames(rows)
    features = [f"f{i:02d}" for i in range(N_FEATURES)]
    ref_path, cur_path = workdir / "reference.parquet", workdir / "current.parquet"
    reference[features].to_parquet(ref_path)
    current[features].to_parquet(cur_path)
    del reference, current
    script = workdir / "peer.py"
    script.write_text(PEER_SCRIPT)
    out = subprocess.run(
        [str(python), str(script), str(ref_path), str(cur_path), str(repeats)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f} GB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="side-by-side size (default 1 M)")
    parser.add_argument(
        "--large-rows", type=int, default=10_000_000, help="size of the solo run (default 10 M)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--peer-repeats", type=int, default=1, help="Evidently takes ~80 s per run here")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    parser.add_argument(
        "--cache-dir",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sluice-bench",
    )
    parser.add_argument("--json", type=Path, help="also write all figures here")
    parser.add_argument(
        "--e2e-rows",
        type=int,
        default=1_000_000,
        help="rows for the end-to-end run from Parquet files (0 to skip)",
    )
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-e2e", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--write-files", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, "gate")))
        return 0
    if args.write_files:
        write_files(args.write_files, args.dir)
        return 0
    if args.worker_e2e:
        print(json.dumps(worker_e2e(args.worker_e2e, args.repeats)))
        return 0

    figures: dict = {"cpu_count": os.cpu_count(), "load_average_at_start": os.getloadavg()}
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}", flush=True)

    ours = run_worker(args.rows, args.repeats)
    figures["ours_small"] = ours
    drift_med, gate_med = statistics.median(ours["drift_s"]), statistics.median(ours["gate_s"])
    print(
        f"[sluice] {args.rows:,} rows x {N_FEATURES} features: drift {drift_med:.2f} s, "
        f"whole data gate ({ours['checks']} checks + evidence) {gate_med:.2f} s "
        f"(median of {args.repeats}); flagged {', '.join(ours['drifted'])}",
        flush=True,
    )

    if not args.skip_peer:
        try:
            python = ensure_peer_venv(args.cache_dir)
            with tempfile.TemporaryDirectory(prefix="bench-drift-") as tmp:
                peer = run_peer(python, args.rows, args.peer_repeats, Path(tmp))
            figures["peer"] = peer
            peer_med = statistics.median(peer["seconds"])
            print(
                f"[evidently {peer['evidently']}, pandas {peer['pandas']}, own venv] DataDriftPreset "
                f"({', '.join(peer['methods'])}): {peer_med:.1f} s (median of {args.peer_repeats}); "
                f"flagged {', '.join(peer['drifted'])}",
                flush=True,
            )
            print(
                f"speed-up at {args.rows:,} rows: drift {peer_med / drift_med:.0f}x, "
                f"whole data gate {peer_med / gate_med:.0f}x (target >= 30x)"
            )
            same = peer["drifted"] == ours["drifted"]
            print(f"same drifted columns: {'yes' if same else 'NO'} (expected {', '.join(EXPECTED_DRIFTED)})")
            figures["same_drifted"] = same
        except (RuntimeError, subprocess.CalledProcessError) as exc:
            detail = getattr(exc, "stderr", None) or str(exc)
            print(f"[evidently] peer could not run: {detail.strip().splitlines()[-1] if detail else exc}")
            figures["peer_error"] = str(detail)[-2000:]

    if not args.skip_large:
        large = run_worker(args.large_rows, args.repeats)
        figures["ours_large"] = large
        gate_large = statistics.median(large["gate_s"])
        ratio = large["peak_rss_bytes"] / large["data_bytes"]
        print(
            f"[sluice] {args.large_rows:,} rows: drift {statistics.median(large['drift_s']):.2f} s, "
            f"whole data gate {gate_large:.2f} s (median of {args.repeats}; target <= 10 s); "
            f"data in memory {_gb(large['data_bytes'])} (reference + current), peak RSS "
            f"{_gb(large['peak_rss_bytes'])} = {ratio:.2f}x data (target <= 1.5x); "
            f"flagged {', '.join(large['drifted'])}"
        )
    if args.e2e_rows:
        e2e = run_e2e(args.e2e_rows, args.repeats)
        figures["ours_e2e"] = e2e
        data_bytes = 2 * args.e2e_rows * (N_FEATURES + 1) * 8
        print(
            f"[sluice] end to end from Parquet, {args.e2e_rows:,} rows (read + type against the contract + "
            f"gate + evidence files): {statistics.median(e2e['seconds']):.2f} s (median of {args.repeats}), "
            f"peak RSS {_gb(e2e['peak_rss_bytes'])} = {e2e['peak_rss_bytes'] / data_bytes:.2f}x the typed "
            f"frames; flagged {', '.join(e2e['drifted'])}"
        )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
