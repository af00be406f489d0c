"""The latency gate's load generator and its host-noise meters.

`drive` offers requests open loop, the way latency SLOs are stated and the way wrk2 measures
them: request i is DUE at t0 + i / rate_rps whether or not earlier requests have been answered,
it goes out on the first of up to `concurrency` keep-alive connections that is free, and its
latency runs from its due time to its response. A server that falls behind is therefore charged
for the queue it causes (coordinated omission corrected). Arrivals are evenly spaced (wrk2's
constant rate), paced by sleeping until each deadline.

Two figures say how noisy the HOST was while the server was measured, independently of how fast
the server is:
- `HiccupMeter`, as jHiccup does: a thread that sleeps 1 ms at a time and records how late it
  wakes. On a quiet host it wakes within ~0.1 ms; when other processes hold the CPUs it wakes
  late, and so would any thread of the server or the load generator.
- the generator's OWN send lag: how late a request went out although a connection was free and
  waiting for its due time. Lag while every connection was busy is the server's queue, not the
  host's noise, and is kept apart (`send_lag_ms` holds both, `own_lag_ms` only the former).

Clients set TCP_NODELAY, as real HTTP clients do (urllib3, Go's net/http).
"""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable

import numpy as np
import orjson
import pandas as pd

REQUEST_TIMEOUT_S = 10.0
# Threads start within a few ms; the first request is due this long after the schedule is fixed
# so that starting them is not charged to request 0.
SCHEDULE_LEAD_S = 0.05
HICCUP_SLEEP_S = 0.001
JSON_HEADERS = {"Content-Type": "application/json"}


def percentile(values: np.ndarray, q: float) -> float:
    """Order statistic (numpy's inverted_cdf): the smallest value with q % at or below it; 0 if empty."""
    values = values[~np.isnan(values)] if values.size else values
    return float(np.percentile(values, q, method="inverted_cdf")) if values.size else 0.0


def request_bodies(features: pd.DataFrame, count: int, rows_per_request: int) -> list[bytes]:
    """MLflow `dataframe_split` JSON bodies cycling through the holdout rows, built before timing.

    Built from plain Python values with orjson (missing values as null): ~20 µs a body, where
    pandas' `to_json` on a one-row slice costs ~5 ms, i.e. seconds per gate run.
    """
    from ml.serving.decoding import frame_columns

    names = [str(c) for c in features.columns]
    columns = frame_columns(features, list(features.columns))
    rows = list(zip(*(columns[c] for c in features.columns), strict=True))
    n = len(rows)
    bodies = []
    for i in range(count):
        start = (i * rows_per_request) % n
        data = [rows[(start + k) % n] for k in range(rows_per_request)]
        doc = {"dataframe_split": {"columns": names, "data": data}}
        bodies.append(orjson.dumps(doc, default=str, option=orjson.OPT_SERIALIZE_NUMPY))
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
        conns[slot].request("POST", "/invocations", body=body, headers=JSON_HEADERS)
        resp = conns[slot].getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as exc:
        if conns[slot] is not None:
            conns[slot].close()
        conns[slot] = None
        return type(exc).__name__


def drive(
    port: int,
    conns: list,
    bodies: list[bytes],
    rate_rps: float | None,
    alive: Callable[[], bool] | None = None,
) -> dict:
    """Send every body over the connections in `conns` (one thread each); times in ms.

    rate_rps given (open loop): body i is due at t0 + i / rate_rps; the next free connection
    sends it at its due time or, when all were busy, as soon as one frees up; latency runs from
    the DUE time. rate_rps None (closed loop): each connection sends its next body as soon as the
    previous one is answered; latency runs from the actual send. `alive` (the server process is
    running) is asked after a failed request: a dead server ends the run early (`aborted`).
    """
    n = len(bodies)
    latency, lag, own, done = (np.full(n, np.nan) for _ in range(4))
    status: list[int | str | None] = [None] * n
    claim = iter(range(n))
    lock = threading.Lock()
    aborted = threading.Event()
    t0 = time.perf_counter() + (SCHEDULE_LEAD_S if rate_rps else 0.0)

    def connection(slot: int) -> None:
        while not aborted.is_set():
            with lock:
                i = next(claim, None)
            if i is None:
                return
            claimed = time.perf_counter()
            due = t0 + i / rate_rps if rate_rps else claimed
            pause = due - claimed
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            status[i] = _post(conns, slot, port, bodies[i])
            end = time.perf_counter()
            latency[i], lag[i], done[i] = (end - due) * 1000.0, (sent - due) * 1000.0, end
            if pause > 0:  # the connection was free and waiting: any lateness is the host's
                own[i] = lag[i]
            if status[i] != 200 and alive is not None and not alive():
                aborted.set()

    threads = [threading.Thread(target=connection, args=(k,), daemon=True) for k in range(len(conns))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    answered = ~np.isnan(done)
    wall = float(np.nanmax(done) - t0) if answered.any() else 0.0
    return {
        "latencies_ms": latency[answered],
        "send_lag_ms": lag[answered],
        "own_lag_ms": own[answered],
        "wall_s": wall,
        "rate_rps": int(answered.sum()) / wall if wall > 0 else None,
        "errors": [s for s in status if s is not None and s != 200],
        "aborted": aborted.is_set(),
    }


def close_all(conns: list) -> None:
    for conn in conns:
        if conn is not None:
            conn.close()


class HiccupMeter:
    """A thread that sleeps 1 ms at a time and records how late it wakes (jHiccup's method).

    Used as a context manager around a measurement: `p99_ms`/`max_ms` are the host's scheduling
    noise the measured requests were exposed to, in the load generator's own process.
    """

    def __init__(self, sleep_s: float = HICCUP_SLEEP_S) -> None:
        self.sleep_s = sleep_s
        self.late_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hiccup-meter", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.perf_counter()
            time.sleep(self.sleep_s)
            self.late_ms.append(max(0.0, (time.perf_counter() - began - self.sleep_s) * 1000.0))

    def __enter__(self) -> HiccupMeter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def figures(self) -> dict:
        late = np.asarray(self.late_ms)
        return {
            "hiccup_p99_ms": percentile(late, 99),
            "hiccup_max_ms": float(late.max()) if late.size else 0.0,
            "hiccup_samples": int(late.size),
        }
