"""Serving benchmark: MLflow's scoring server vs ml.serving, same demo model, same load, one run.

    python benchmarks/bench_serving.py [--kinds logistic_regression decision_tree random_forest]
                                       [--repeats 3] [--rate 40]

The demo models are trained here exactly as `sluice run` trains them (seeded demo data, the
default candidates, the pipeline's split) and saved as the log step saves them: the sklearn
flavor (what `mlflow models serve` serves) plus the onnx flavor (what `python -m ml.serving`
serves). For each kind both servers run side by side (one worker each, loopback) and are measured
alternately, never at the same time:

- capacity, closed loop: back-to-back one-row `dataframe_split` requests over one keep-alive
  connection from a raw-socket client (pre-built bytes: an http.client client would cost more per
  request than ml.serving does), and the server's CPU per request (utime + stime of its whole
  process group over the burst, from /proc);
- latency, open loop: the model gate's own load generator (`gates.checks.loadgen.drive`) at
  `--rate` req/s over 4 connections, p50/p99 from each request's scheduled send time, with the
  host's noise beside them (hiccup p99, the generator's own send-lag p99).

Targets (issue 12): capacity >= 20x MLflow's, p99 <= 10 ms at 40 req/s. Every figure is the
median of `--repeats` rounds; the load average is printed before and after. Nothing asserts.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

from gates.checks.loadgen import HiccupMeter, close_all, drive, percentile, request_bodies
from gates.checks.server import free_port, ping

CLK_TCK = os.sysconf("SC_CLK_TCK")
KINDS = ("logistic_regression", "decision_tree", "random_forest")


def server_command(kind: str, model_dir: Path, port: int) -> list[str]:
    if kind == "mlflow":  # MLflow's own scoring server (mlflow.pyfunc.scoring_server under uvicorn)
        return [sys.executable, "-m", "mlflow", "models", "serve", "-m", str(model_dir),
                "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port), "-w", "1"]  # fmt: skip
    return [sys.executable, "-m", "ml.serving", "--model-uri", str(model_dir), "--port", str(port)]


class Server:
    def __init__(self, kind: str, model_dir: Path) -> None:
        self.kind, self.port = kind, free_port()
        self.proc = subprocess.Popen(
            server_command(kind, model_dir, self.port),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own group: CPU summed over it, stopped as a whole
        )
        began = time.monotonic()
        while not ping(self.port):
            if self.proc.poll() is not None or time.monotonic() - began > 120:
                raise SystemExit(f"{kind} server did not start (exit {self.proc.poll()})")
            time.sleep(0.05)
        self.startup_s = time.monotonic() - began

    def cpu_s(self) -> float:
        """utime + stime of every process in the server's process group (MLflow's spawns uvicorn)."""
        total = 0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == self.proc.pid:  # field 5: process group id
                total += int(fields[11]) + int(fields[12])
        return total / CLK_TCK

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


class RawConnection:
    """Keep-alive HTTP/1.1 client over one socket: send pre-built bytes, read one response."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def request(self, raw: bytes) -> int:
        self.sock.sendall(raw)
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, _, rest = self.buf.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        length = next(
            int(v)
            for k, _, v in (ln.partition(b":") for ln in lines[1:])
            if k.strip().lower() == b"content-length"
        )
        while len(rest) < length:
            rest += self._recv()
        self.buf = rest[length:]
        return int(lines[0].split()[1])

    def _recv(self) -> bytes:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("server closed the connection")
        return chunk


def raw_requests(bodies: list[bytes]) -> list[bytes]:
    head = b"POST /invocations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    return [head + f"Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


def closed_loop(server: Server, raws: list[bytes]) -> dict:
    """Back-to-back requests over one connection: answered req/s and server CPU per request."""
    conn = RawConnection(server.port)
    cpu0, t0 = server.cpu_s(), time.perf_counter()
    errors = sum(conn.request(r) != 200 for r in raws)
    wall, cpu = time.perf_counter() - t0, server.cpu_s() - cpu0
    conn.sock.close()
    return {"rps": len(raws) / wall, "cpu_us": cpu / len(raws) * 1e6, "errors": errors}


def open_loop(server: Server, bodies: list[bytes], rate: float) -> dict:
    conns: list = [None] * 4
    with HiccupMeter() as meter:
        run = drive(server.port, conns, bodies, rate)
    close_all(conns)
    lat = run["latencies_ms"]
    return {
        "p50_ms": percentile(lat, 50),
        "p99_ms": percentile(lat, 99),
        "achieved_rps": run["rate_rps"],
        "errors": len(run["errors"]),
        "own_lag_p99_ms": percentile(run["own_lag_ms"], 99),
        "hiccup_p99_ms": meter.figures()["hiccup_p99_ms"],
    }


def median_of(rounds: list[dict]) -> dict:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def measure(model_dir: Path, features: pd.DataFrame, args: argparse.Namespace) -> dict:
    servers = {name: Server(name, model_dir) for name in ("mlflow", "sluice")}
    rounds: dict = {name: {"cap": [], "open": []} for name in servers}
    try:
        for _ in range(args.repeats):
            for name, server in servers.items():
                n = args.sluice_requests if name == "sluice" else args.mlflow_requests
                raws = raw_requests(request_bodies(features, n, 1))
                closed_loop(server, raws[: max(50, n // 10)])  # warm-up
                rounds[name]["cap"].append(closed_loop(server, raws))
                bodies = request_bodies(features, args.open_requests, 1)
                rounds[name]["open"].append(open_loop(server, bodies, args.rate))
    finally:
        for server in servers.values():
            server.stop()
    out = {name: {k: median_of(v) for k, v in r.items()} for name, r in rounds.items()}
    for name, server in servers.items():
        out[name]["startup_s"] = server.startup_s
    return out


def demo_models(root: Path, kinds: list[str]) -> tuple[dict[str, Path], pd.DataFrame]:
    """The demo models `sluice run` would train, saved with both flavors; and the holdout features."""
    from ml.components.log import model_requirements
    from ml.data.contract import load_contract, load_snapshot
    from ml.data.demo import write_demo
    from ml.serving.export import SklearnWithOnnx
    from ml.training import candidates as c
    from ml.training.evaluate import binary_target
    from ml.training.persist import SKOPS_TRUSTED_TYPES
    from ml.training.split import stratified_split

    files = write_demo(root / "data")
    contract = load_contract(files.contract)
    frame, _, _ = load_snapshot(files.current, contract)
    train, _, holdout = stratified_split(
        frame, contract.label, seed=c.DEFAULT_SEED, validation_fraction=c.DEFAULT_VALIDATION_FRACTION,
        holdout_fraction=c.DEFAULT_HOLDOUT_FRACTION,
    )  # fmt: skip
    params = {cand["model_type"]: cand["params"] for cand in c.DEFAULT_CANDIDATES}
    dirs = {}
    for kind in kinds:
        model = c.build_model(contract, kind, params[kind], c.DEFAULT_SEED)
        model.fit(train, binary_target(train[contract.label], contract.positive_class))
        dirs[kind] = root / kind
        SklearnWithOnnx.save_model(
            str(dirs[kind]), model, serialization_format="skops",
            skops_trusted_types=list(SKOPS_TRUSTED_TYPES), pip_requirements=model_requirements(),
        )  # fmt: skip
    return dirs, holdout[[col.name for col in contract.features]]


def report(kind: str, res: dict, rate: float) -> None:
    ratio = res["sluice"]["cap"]["rps"] / res["mlflow"]["cap"]["rps"]
    print(f"\n== {kind}: capacity ratio ml.serving / MLflow = {ratio:.1f}x  (target >= 20x)")
    print(
        f"   {'server':<22} {'start s':>7} {'capacity':>10} {'cpu/req':>9} {f'p50@{rate:g}':>9} {'p99':>9} "
        f"{'achieved':>9} {'errors':>6} {'hiccup p99':>10} {'own lag p99':>11}"
    )
    for name, label in (("mlflow", "mlflow scoring_server"), ("sluice", "ml.serving")):
        r, cap, op = res[name], res[name]["cap"], res[name]["open"]
        errors = int(cap["errors"] + op["errors"])
        print(
            f"   {label:<22} {r['startup_s']:7.1f} {cap['rps']:8.0f}/s {cap['cpu_us']:7.0f}µs "
            f"{op['p50_ms']:7.2f}ms {op['p99_ms']:7.2f}ms {op['achieved_rps']:9.2f} "
            f"{errors:6d} {op['hiccup_p99_ms']:8.2f}ms {op['own_lag_p99_ms']:9.2f}ms"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", nargs="+", default=list(KINDS), choices=KINDS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--open-requests", type=int, default=320)
    parser.add_argument("--mlflow-requests", type=int, default=300)
    parser.add_argument("--sluice-requests", type=int, default=4000)
    args = parser.parse_args(argv)

    print(f"serving benchmark: {os.cpu_count()} CPUs, load average before {os.getloadavg()}")
    with tempfile.TemporaryDirectory(prefix="sluice-bench-serving-") as tmp:
        dirs, features = demo_models(Path(tmp), args.kinds)
        for kind in args.kinds:
            report(kind, measure(dirs[kind], features, args), args.rate)
    print(f"\nload average after: {os.getloadavg()}  (medians of {args.repeats} rounds, one worker each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
