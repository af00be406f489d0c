"""The latency load generator and its host-noise meters against real HTTP servers on loopback.

The subject here is the load generator, so the server under test is a small real HTTP/1.1
server (keep-alive, one thread per connection) whose work is serialized behind one lock, like a
single model worker, and takes a set time per request. It records when each request arrived.
Its per-request sleep is the simulated service time of the server, not synchronisation. The
verdict logic (pass / too slow / inconclusive) is in tests/gates/test_latency_verdict.py.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest

from gates.checks.latency import latency_checks, measure_latency, summarize
from gates.checks.loadgen import HiccupMeter, drive
from gates.checks.server import ServeError, model_server
from gates.gate_policy import load_policy
from sluice.errors import SluiceError
from tests.gates.conftest import write_yaml

POLICY = {
    "max_p99_ms": 100,
    "min_achieved_fraction": 0.9,
    "concurrency": 4,
    "rows_per_request": 1,
    "warmup_requests": 0,
    "saturation_requests": 0,
    "workers": 1,
    "max_hiccup_p99_ms": 10,
    "max_send_lag_p99_ms": 10,
    "attempts": 1,
    "attempt_pause_s": 0,
}


class OneWorkerServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, service_s: float) -> None:
        self.service_s = service_s
        self.work = threading.Lock()
        self.arrivals: list[float] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the scoring server speaks it
    # Headers and body go out in two writes; with Nagle on, the body would wait ~40 ms for the
    # client's delayed ACK (the very stall uvicorn's multi-worker mode has, see latency.py).
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        self.server.arrivals.append(time.perf_counter())
        self.rfile.read(int(self.headers["Content-Length"]))
        with self.server.work:
            if self.server.service_s:
                time.sleep(self.server.service_s)
        body = b'{"predictions": [0]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def one_worker_server() -> Iterator:
    servers = []

    def start(service_s: float) -> OneWorkerServer:
        server = OneWorkerServer(service_s)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _run(server: OneWorkerServer, n: int, rate: float | None, concurrency: int = 4) -> dict:
    conns: list = [None] * concurrency
    try:
        return drive(server.server_address[1], conns, [b"{}"] * n, rate)
    finally:
        for conn in conns:
            if conn is not None:
                conn.close()


def test_open_loop_sends_at_the_offered_rate_not_as_fast_as_the_server_answers(one_worker_server):
    server = one_worker_server(0.0)
    n, rate = 50, 25.0
    started = time.perf_counter()
    run = _run(server, n, rate)
    assert not run["errors"] and len(server.arrivals) == n
    # request i is never sent before t0 + i / rate, and t0 is after `started`: the last arrival is
    # at least (n - 1) / rate after it (a late first arrival, e.g. a slow connect, cannot hide this)
    last = max(server.arrivals) - started
    assert last >= (n - 1) / rate, f"last request arrived {last:.3f} s in; paced load needs >= 1.96 s"
    # ...and cannot be answered faster than offered: n / ((n - 1) / rate) is the ceiling
    assert run["rate_rps"] <= n / ((n - 1) / rate) + 1e-9
    # the same server, driven closed-loop, answers the same requests much faster than that
    server.arrivals.clear()
    closed = _run(server, n, None)
    assert max(server.arrivals) - min(server.arrivals) < last / 2 and closed["rate_rps"] > 2 * rate


def test_queueing_behind_a_slow_server_is_charged_to_latency_and_the_rate_check_fails(one_worker_server):
    # One worker needing 20 ms per request can answer at most 50 req/s; 100 req/s are offered.
    service_s, n, rate = 0.020, 30, 100.0
    server = one_worker_server(service_s)
    run = _run(server, n, rate)
    assert not run["errors"]
    # The server finishes the n-th request no earlier than n * 20 ms after t0 and that request was
    # due at most (n - 1) / rate after t0: timed from its due time it took >= 310 ms. Timed from
    # its actual send (a closed-loop view) it could show at most ~4 queued requests, ~80 ms.
    floor_ms = (n * service_s - (n - 1) / rate) * 1000
    assert run["latencies_ms"].max() >= floor_ms - 1
    # requests waited for a free connection: the generator's send lag shows the queue
    assert np.nanmax(run["send_lag_ms"]) > 100
    assert run["rate_rps"] <= 1 / service_s + 1e-9

    # ...and that queue is the server's, not the host's: the generator's OWN lag leaves it out
    own = run["own_lag_ms"][~np.isnan(run["own_lag_ms"])]
    assert own.size < n and (own.size == 0 or own.max() < np.nanmax(run["send_lag_ms"]))

    policy = {**POLICY, "rate_rps": rate, "requests": n}
    checks = {c["name"]: c for c in latency_checks(summarize(run, policy), policy)}
    assert not checks["latency.p99_ms"]["passed"]
    achieved = checks["latency.achieved_rps"]
    assert not achieved["passed"] and achieved["threshold"] == 90.0
    assert "fell behind" in achieved["reason"] and "of the 100 offered" in achieved["reason"]


def test_a_server_that_keeps_up_passes_at_the_same_service_time(one_worker_server):
    # Same 20 ms worker at 20 req/s (40 % busy): no queue, latency ~ service time, rate sustained.
    service_s, n, rate = 0.020, 20, 20.0
    server = one_worker_server(service_s)
    run = _run(server, n, rate)
    policy = {**POLICY, "rate_rps": rate, "requests": n}
    summary = summarize(run, policy)
    checks = {c["name"]: c for c in latency_checks(summary, policy)}
    assert summary["p50_ms"] >= service_s * 1000
    assert checks["latency.achieved_rps"]["passed"], checks["latency.achieved_rps"]["reason"]
    assert checks["latency.errors"]["passed"]


def test_a_dead_port_is_counted_as_errors_not_raised(one_worker_server):
    server = one_worker_server(0.0)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    conns: list = [None, None]
    run = drive(port, conns, [b"{}"] * 4, None)
    assert run["errors"] == ["ConnectionRefusedError"] * 4


def test_a_dead_server_ends_the_run_early(one_worker_server):
    server = one_worker_server(0.0)
    port = server.server_address[1]
    server.shutdown()
    server.server_close()
    run = drive(port, [None], [b"{}"] * 400, 40.0, alive=lambda: False)  # 10 s of load if not stopped
    assert run["aborted"] and len(run["errors"]) == 1 and run["wall_s"] < 5


def test_the_hiccup_meter_sees_a_stall_of_its_own_process():
    """Holding the GIL for 60 ms (a switch interval longer than that) stalls every other thread of
    this process, as a busy host would: the meter must see it; before and after it sees ~nothing."""
    previous = sys.getswitchinterval()
    with HiccupMeter() as meter:
        time.sleep(0.05)
        sys.setswitchinterval(1.0)
        try:
            end = time.perf_counter() + 0.06
            while time.perf_counter() < end:
                pass
        finally:
            sys.setswitchinterval(previous)
        time.sleep(0.05)
    figures = meter.figures()
    assert figures["hiccup_max_ms"] >= 40, figures
    assert figures["hiccup_samples"] >= 10


@pytest.mark.slow
def test_a_directory_that_is_no_model_is_a_serve_error_with_the_exit_status_and_last_line(tmp_path):
    policy = {**POLICY, "startup_timeout_s": 60}
    with model_server(tmp_path, workers=1) as server, pytest.raises(ServeError, match="exit code 1") as err:
        measure_latency(server, pd.DataFrame({"x": [1.0]}), policy)
    assert server.proc.poll() is not None
    assert err.value.server_exit["exit_status"] == 1
    assert "MLmodel" in err.value.server_exit["last_stderr_line"]


@pytest.mark.parametrize(
    ("latency", "where"),
    [
        ({"rate_rps": 0}, "rate_rps"),
        ({"min_achieved_fraction": 1.5}, "min_achieved_fraction"),
        ({"workers": 0}, "workers"),
        ({"saturation_requests": -1}, "saturation_requests"),
        ({"attempts": 0}, "attempts"),
        ({"max_hiccup_p99_ms": 0}, "max_hiccup_p99_ms"),
        ({"server": "mlflow"}, "server"),
    ],
)
def test_policy_schema_refuses_impossible_load_settings(tmp_path, latency, where):
    doc = {"apiVersion": "sluice.dev/v1", "kind": "GatePolicy", "model": {"latency": latency}}
    path = write_yaml(tmp_path / "p.yaml", doc)
    with pytest.raises(SluiceError, match=f"model/latency.*{where}"):
        load_policy(path)


def test_default_policy_states_the_offered_load_and_the_noise_rule():
    policy = load_policy()["model"]
    latency = policy["latency"]
    assert latency["rate_rps"] == 40 and latency["requests"] == 160 and latency["workers"] == 1
    assert latency["requests"] / latency["rate_rps"] <= 4.0  # the timed phase stays short
    assert latency["attempts"] == 3 and latency["max_hiccup_p99_ms"] <= latency["max_p99_ms"] / 10
    assert policy["parity"]["max_abs_proba_diff"] == 1e-6
