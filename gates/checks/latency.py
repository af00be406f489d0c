"""Latency of the candidate as it will really be called: over HTTP, served by MLflow, under load.

The server is `mlflow models serve --env-manager local` as its own process on a loopback port:
the same command an operator would run and the same scoring app (uvicorn + MLflow's pyfunc
scoring server) the serving image uses. It starts in ~6 s here, as fast as launching uvicorn on
MLflow's app directly, and being a separate process matters: a server in a thread of the gate
would share the GIL with the load generator and the gate would measure its own contention.

Requests are JSON `dataframe_split` bodies built from holdout rows before timing starts; each
client thread keeps one HTTP/1.1 connection open (as a real caller's pool would), and all threads
start together. Percentiles are order statistics (numpy's inverted_cdf: the smallest latency
with at least q % of requests at or below it), never interpolated.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from gates.checks.result import fmt, make_check

SERVER_DESCRIPTION = "mlflow models serve --env-manager local (uvicorn, MLflow pyfunc scoring server)"
HISTOGRAM_BINS = 30


class ServeError(RuntimeError):
    """The candidate could not be served; the message is the reason recorded in evidence."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ping(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", "/ping")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its children (mlflow starts uvicorn under it) by process group."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)


@contextmanager
def served_model(model_dir: str | Path, startup_timeout_s: float) -> Iterator[dict]:
    """Serve an MLflow model directory on loopback; yields {"port", "startup_s"}."""
    with tempfile.TemporaryFile() as log:
        port = _free_port()
        started = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                str(model_dir),
                "--env-manager",
                "local",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-w",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            deadline = started + startup_timeout_s
            while not _ping(port):
                if proc.poll() is not None:
                    log.seek(0)
                    tail = [ln for ln in log.read().decode(errors="replace").splitlines() if ln.strip()]
                    raise ServeError(
                        f"model server exited with code {proc.returncode}: "
                        f"{tail[-1] if tail else 'no output'}"
                    )
                if time.monotonic() > deadline:
                    raise ServeError(f"model server did not answer /ping within {fmt(startup_timeout_s)} s")
                time.sleep(0.1)
            yield {"port": port, "startup_s": time.monotonic() - started}
        finally:
            _stop(proc)


def request_bodies(features: pd.DataFrame, count: int, rows_per_request: int) -> list[bytes]:
    """JSON bodies cycling through the holdout rows, prepared before any timing."""
    bodies = []
    n = len(features)
    for i in range(count):
        start = (i * rows_per_request) % n
        idx = [(start + k) % n for k in range(rows_per_request)]
        split = features.iloc[idx].to_json(orient="split", index=False, date_format="iso")
        bodies.append(b'{"dataframe_split": ' + split.encode() + b"}")
    return bodies


def _client(port: int, bodies: list[bytes], barrier: threading.Barrier, out: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    headers = {"Content-Type": "application/json"}
    barrier.wait()
    for body in bodies:
        t0 = time.perf_counter()
        try:
            conn.request("POST", "/invocations", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except OSError as exc:
            status = f"{type(exc).__name__}"
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        out.append(((time.perf_counter() - t0) * 1000.0, status))
    conn.close()


def load_test(port: int, bodies: list[bytes], concurrency: int) -> dict:
    """Send `bodies` with `concurrency` parallel keep-alive clients; latencies in ms."""
    concurrency = max(1, min(concurrency, len(bodies)))
    shards = [bodies[k::concurrency] for k in range(concurrency)]
    results: list[list] = [[] for _ in shards]
    barrier = threading.Barrier(concurrency + 1)
    threads = [
        threading.Thread(target=_client, args=(port, s, barrier, r), daemon=True)
        for s, r in zip(shards, results, strict=True)
    ]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    flat = [item for r in results for item in r]
    latencies = np.array([lat for lat, _ in flat])
    errors = [status for _, status in flat if status != 200]
    return {"latencies_ms": latencies, "wall_s": wall, "errors": errors}


def summarize(run: dict, concurrency: int, rows_per_request: int) -> dict:
    lat = run["latencies_ms"]
    pct = {q: float(np.percentile(lat, q, method="inverted_cdf")) for q in (50, 95, 99)}
    counts, edges = np.histogram(lat, bins=HISTOGRAM_BINS, range=(0.0, float(lat.max()) or 1.0))
    error_kinds: dict[str, int] = {}
    for status in run["errors"]:
        error_kinds[str(status)] = error_kinds.get(str(status), 0) + 1
    return {
        "server": SERVER_DESCRIPTION,
        "p50_ms": pct[50],
        "p95_ms": pct[95],
        "p99_ms": pct[99],
        "mean_ms": float(lat.mean()),
        "max_ms": float(lat.max()),
        "throughput_rps": len(lat) / run["wall_s"] if run["wall_s"] > 0 else None,
        "requests": len(lat),
        "concurrency": concurrency,
        "rows_per_request": rows_per_request,
        "errors": len(run["errors"]),
        "error_kinds": error_kinds,
        "wall_s": run["wall_s"],
        "histogram": {"edges_ms": edges.tolist(), "counts": counts.astype(int).tolist()},
    }


def measure_latency(model_dir: str | Path, features: pd.DataFrame, policy: dict) -> dict:
    """Serve the model, warm it up, then time `requests` concurrent requests; raises ServeError."""
    if features.empty:
        raise ServeError("holdout has no rows to send")
    with served_model(model_dir, policy["startup_timeout_s"]) as server:
        if policy["warmup_requests"]:
            warm = load_test(
                server["port"],
                request_bodies(features, policy["warmup_requests"], policy["rows_per_request"]),
                policy["concurrency"],
            )
            if len(warm["errors"]) == policy["warmup_requests"]:
                raise ServeError(f"every warm-up request failed (e.g. status {warm['errors'][0]})")
        bodies = request_bodies(features, policy["requests"], policy["rows_per_request"])
        run = load_test(server["port"], bodies, policy["concurrency"])
    summary = summarize(run, policy["concurrency"], policy["rows_per_request"])
    summary["startup_s"] = server["startup_s"]
    return summary


def latency_checks(summary: dict | None, policy: dict, failure: str | None = None) -> list[dict]:
    limit = policy["max_p99_ms"]
    if summary is None:
        reason = f"candidate could not be served: {failure}"
        return [
            make_check("latency.p99_ms", "latency", None, limit, "<=", reason),
            make_check("latency.errors", "latency", None, 0, "<=", reason),
        ]
    figures = {
        k: summary[k]
        for k in ("p50_ms", "p95_ms", "mean_ms", "max_ms", "throughput_rps", "requests", "concurrency")
    }
    return [
        make_check(
            "latency.p99_ms",
            "latency",
            summary["p99_ms"],
            limit,
            "<=",
            f"p99 {fmt(summary['p99_ms'])} ms (p50 {fmt(summary['p50_ms'])}, p95 {fmt(summary['p95_ms'])}) "
            f"over {summary['requests']} requests at concurrency {summary['concurrency']}; "
            f"{'within' if summary['p99_ms'] <= limit else 'exceeds'} {fmt(limit)} ms",
            details=figures,
        ),
        make_check(
            "latency.errors",
            "latency",
            summary["errors"],
            0,
            "<=",
            "every request answered 200"
            if not summary["errors"]
            else f"{summary['errors']} request(s) failed: {summary['error_kinds']}",
        ),
    ]
