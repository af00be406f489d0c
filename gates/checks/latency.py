"""Latency of the candidate as it will really be called: over HTTP, served, at a stated load.

The server is its own process on a loopback port, started with the command production runs:
by default `python -m ml.serving` (MLflow's scoring app under uvicorn, GC frozen after the
model loads, TCP_NODELAY on every connection: see ml/serving/app.py for why), or, with policy
`server: mlflow`, plain `mlflow models serve --env-manager local`. A separate process matters:
a server in a thread of the gate would share the GIL with the load generator, and the gate would
measure its own contention. Start-up takes seconds, so the model gate starts the server first and
only waits for /ping when the load test begins (`model_server` + `ModelServer.wait_ready`).

The load is open-loop, the way latency SLOs are stated and the way wrk2 measures them: request i
is DUE at t0 + i / rate_rps whether or not earlier requests have been answered, it goes out on the
first of up to `concurrency` keep-alive connections that is free, and its latency runs from its
due time to its response. A server that falls behind is therefore charged for the queue it causes
(coordinated omission corrected); a closed loop of clients that wait for each answer before sending
the next would slow down with the server and hide exactly that queue. Arrivals are evenly spaced
(wrk2's constant rate), paced by sleeping until each deadline: that is the load generator's clock.

Two more figures come with the percentiles. `achieved_rps` (requests / time from the first due
time to the last response) must reach `min_achieved_fraction` of the offered rate: below it the
server could not keep up, its queue was still growing when the run ended, and a longer run would
have shown a worse p99 than this short one. `throughput_rps` is the closed-loop saturation rate
(`concurrency` clients sending back to back), measured after the timed phase and only reported:
the server's capacity, i.e. the headroom above the offered rate.

Clients set TCP_NODELAY, as real HTTP clients do (urllib3, Go's net/http). Measured here it makes
no difference: http.client already sends headers and a bytes body in one send(). The ~44 ms floor
of `mlflow models serve -w 2` is server-side (uvicorn's multi-worker listener, see ml/serving/app.py).

Request bodies are JSON `dataframe_split` built from holdout rows before timing starts.
Percentiles are order statistics (numpy's inverted_cdf: the smallest latency with at least q % of
requests at or below it), never interpolated.
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
from typing import IO

import numpy as np
import pandas as pd

from gates.checks.result import fmt, make_check

# `python -m <module args>` of each server policy `server` may name; both take the same options.
SERVER_MODULES = {
    "sluice": ["ml.serving"],
    "mlflow": ["mlflow", "models", "serve", "--env-manager", "local"],
}
HISTOGRAM_BINS = 30
REQUEST_TIMEOUT_S = 10.0
# Threads start within a few ms; the first request is due this long after the schedule is fixed
# so that starting them is not charged to request 0.
SCHEDULE_LEAD_S = 0.05


class ServeError(RuntimeError):
    """The candidate could not be served or measured; the message is the reason recorded in evidence."""


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


class ModelServer:
    """One model-server process on a loopback port, started now, awaited later."""

    def __init__(self, model_dir: str | Path, workers: int, log: IO[bytes], kind: str = "sluice") -> None:
        self.port = _free_port()
        self.workers = workers
        self.startup_s: float | None = None
        self._log = log
        self._started = time.monotonic()
        options = ["--model-uri", str(model_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *SERVER_MODULES[kind], *options, "--workers", str(workers)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout_s: float) -> float:
        """Block until /ping answers; returns how long THIS call waited. Raises ServeError."""
        began = time.monotonic()
        deadline = self._started + timeout_s
        while self.startup_s is None:
            if self.proc.poll() is not None:
                self._log.seek(0)
                tail = [ln for ln in self._log.read().decode(errors="replace").splitlines() if ln.strip()]
                last = tail[-1] if tail else "no output"
                raise ServeError(f"model server exited with code {self.proc.returncode}: {last}")
            if _ping(self.port):
                self.startup_s = time.monotonic() - self._started
            elif time.monotonic() > deadline:
                raise ServeError(f"model server did not answer /ping within {fmt(timeout_s)} s")
            else:
                time.sleep(0.1)
        return time.monotonic() - began

    def stop(self) -> None:
        """Stop the server and its children (uvicorn workers) by process group."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


@contextmanager
def model_server(model_dir: str | Path, workers: int = 1, kind: str = "sluice") -> Iterator[ModelServer]:
    """Start serving `model_dir` now; the caller decides when to `wait_ready`. Always stopped on exit.

    kind: "sluice" (python -m ml.serving) or "mlflow" (mlflow models serve), policy `server`.
    """
    with tempfile.TemporaryFile() as log:
        server = ModelServer(model_dir, workers, log, kind)
        try:
            yield server
        finally:
            server.stop()


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


def _connect(port: int) -> http.client.HTTPConnection:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=REQUEST_TIMEOUT_S)
    conn.connect()
    conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return conn


def _post(conns: list, slot: int, port: int, body: bytes) -> int | str:
    """POST one body on connection `slot` (opened on first use, reopened after an error)."""
    try:
        if conns[slot] is None:
            conns[slot] = _connect(port)
        conns[slot].request("POST", "/invocations", body=body, headers={"Content-Type": "application/json"})
        resp = conns[slot].getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as exc:
        if conns[slot] is not None:
            conns[slot].close()
        conns[slot] = None
        return type(exc).__name__


def drive(port: int, conns: list, bodies: list[bytes], rate_rps: float | None) -> dict:
    """Send every body over the connections in `conns` (one thread each); times in ms.

    rate_rps given (open loop): body i is due at t0 + i / rate_rps; the next free connection
    sends it at its due time or, when all were busy, as soon as one frees up; latency runs from
    the DUE time. rate_rps None (closed loop): each connection sends its next body as soon as the
    previous one is answered; latency runs from the actual send.
    """
    n = len(bodies)
    latency = np.full(n, np.nan)
    lag = np.full(n, np.nan)
    done = np.full(n, np.nan)
    status: list[int | str | None] = [None] * n
    claim = iter(range(n))
    lock = threading.Lock()
    t0 = time.perf_counter() + (SCHEDULE_LEAD_S if rate_rps else 0.0)

    def connection(slot: int) -> None:
        while True:
            with lock:
                i = next(claim, None)
            if i is None:
                return
            if rate_rps:
                due = t0 + i / rate_rps
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            sent = time.perf_counter()
            if not rate_rps:
                due = sent
            status[i] = _post(conns, slot, port, bodies[i])
            end = time.perf_counter()
            latency[i], lag[i], done[i] = (end - due) * 1000.0, (sent - due) * 1000.0, end

    threads = [threading.Thread(target=connection, args=(k,), daemon=True) for k in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = float(np.nanmax(done) - t0) if n else 0.0
    return {
        "latencies_ms": latency,
        "send_lag_ms": lag,
        "wall_s": wall,
        "rate_rps": n / wall if wall > 0 else None,
        "errors": [s for s in status if s != 200],
    }


def summarize(run: dict, policy: dict) -> dict:
    lat = run["latencies_ms"]
    pct = {q: float(np.percentile(lat, q, method="inverted_cdf")) for q in (50, 95, 99)}
    counts, edges = np.histogram(lat, bins=HISTOGRAM_BINS, range=(0.0, float(lat.max()) or 1.0))
    error_kinds: dict[str, int] = {}
    for status in run["errors"]:
        error_kinds[str(status)] = error_kinds.get(str(status), 0) + 1
    return {
        "server": f"{server_command(policy)} (uvicorn, MLflow pyfunc scoring app)",
        "workers": policy["workers"],
        "load": "open loop: latency from each request's scheduled send time",
        "offered_rps": float(policy["rate_rps"]),
        "achieved_rps": run["rate_rps"],
        "min_achieved_rps": policy["min_achieved_fraction"] * policy["rate_rps"],
        "concurrency": policy["concurrency"],
        "requests": len(lat),
        "rows_per_request": policy["rows_per_request"],
        "warmup_requests": policy["warmup_requests"],
        "p50_ms": pct[50],
        "p95_ms": pct[95],
        "p99_ms": pct[99],
        "mean_ms": float(lat.mean()),
        "max_ms": float(lat.max()),
        "send_lag_p99_ms": float(np.percentile(run["send_lag_ms"], 99, method="inverted_cdf")),
        "errors": len(run["errors"]),
        "error_kinds": error_kinds,
        "wall_s": run["wall_s"],
        "histogram": {"edges_ms": edges.tolist(), "counts": counts.astype(int).tolist()},
    }


def measure_latency(server: ModelServer, features: pd.DataFrame, policy: dict) -> dict:
    """Wait for the server, warm it up, run the open-loop load, then the saturation burst.

    Raises ServeError when the model cannot be served or every warm-up request fails.
    """
    if features.empty:
        raise ServeError("holdout has no rows to send")
    ready_wait_s = server.wait_ready(policy["startup_timeout_s"])
    rows = policy["rows_per_request"]
    conns: list = [None] * policy["concurrency"]
    try:
        if policy["warmup_requests"]:
            warm = drive(server.port, conns, request_bodies(features, policy["warmup_requests"], rows), None)
            if len(warm["errors"]) == policy["warmup_requests"]:
                raise ServeError(f"every warm-up request failed (e.g. {warm['errors'][0]})")
        bodies = request_bodies(features, policy["requests"], rows)
        summary = summarize(drive(server.port, conns, bodies, float(policy["rate_rps"])), policy)
        summary["throughput_rps"] = None
        summary["saturation_requests"] = policy["saturation_requests"]
        if policy["saturation_requests"]:
            burst = request_bodies(features, policy["saturation_requests"], rows)
            summary["throughput_rps"] = drive(server.port, conns, burst, None)["rate_rps"]
    finally:
        for conn in conns:
            if conn is not None:
                conn.close()
    summary["startup_s"] = server.startup_s
    summary["ready_wait_s"] = ready_wait_s
    return summary


def server_command(policy: dict) -> str:
    prefix = "python -m ml.serving" if policy["server"] == "sluice" else " ".join(SERVER_MODULES["mlflow"])
    return f"{prefix} --workers {policy['workers']}"


def describe_load(policy: dict) -> str:
    """What was offered, in the words the evidence and the policy file use."""
    rows = policy["rows_per_request"]
    return (
        f"{policy['requests']} requests of {rows} row{'s' if rows != 1 else ''} offered open-loop at "
        f"{fmt(policy['rate_rps'])} req/s over up to {policy['concurrency']} keep-alive connections "
        f"to {server_command(policy)}, "
        f"after {policy['warmup_requests']} warm-up requests"
    )


def latency_checks(summary: dict | None, policy: dict, failure: str | None = None) -> list[dict]:
    limit = policy["max_p99_ms"]
    min_rps = policy["min_achieved_fraction"] * policy["rate_rps"]
    if summary is None:
        reason = f"candidate could not be served: {failure}"
        return [
            make_check("latency.p99_ms", "latency", None, limit, "<=", reason),
            make_check("latency.achieved_rps", "latency", None, min_rps, ">=", reason),
            make_check("latency.errors", "latency", None, 0, "<=", reason),
        ]
    figures = {
        k: summary.get(k)
        for k in (
            "p50_ms",
            "p95_ms",
            "mean_ms",
            "max_ms",
            "offered_rps",
            "achieved_rps",
            "throughput_rps",
            "requests",
            "concurrency",
            "rows_per_request",
        )
    }
    achieved = summary["achieved_rps"]
    sustained = achieved is not None and achieved >= min_rps
    return [
        make_check(
            "latency.p99_ms",
            "latency",
            summary["p99_ms"],
            limit,
            "<=",
            f"p99 {fmt(summary['p99_ms'])} ms (p50 {fmt(summary['p50_ms'])}, p95 {fmt(summary['p95_ms'])}), "
            f"timed from each request's scheduled send, {describe_load(policy)}; "
            f"{'within' if summary['p99_ms'] <= limit else 'exceeds'} {fmt(limit)} ms",
            details=figures,
        ),
        make_check(
            "latency.achieved_rps",
            "latency",
            achieved,
            min_rps,
            ">=",
            f"answered {fmt(achieved)} req/s of the {fmt(policy['rate_rps'])} offered "
            + (
                f"(at least {fmt(min_rps)} needed)"
                if sustained
                else f"(below the {fmt(min_rps)} needed): the server fell behind the offered load, "
                "its queue was still growing, so a longer run would show a worse p99 than this one"
            ),
            details={"offered_rps": policy["rate_rps"], "send_lag_p99_ms": summary.get("send_lag_p99_ms")},
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
