"""The model gate's serving checks, on the server production would run: export, parity, latency.

`serving_session` starts `python -m ml.serving` on the candidate's `onnx` flavor at once (the
server loads while the gate scores the holdout with scikit-learn), and `ServingSession.judge`
then asks it about the whole holdout (parity) and offers it the policy's load (latency). A
candidate without the flavor is not served at all: every serving check fails with the
exporter's one-line reason, and no slower path is measured in its place.
"""

from __future__ import annotations

import http.client
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pandas as pd

from gates.checks.latency import describe_load, latency_checks, measure_latency
from gates.checks.parity import export_check, export_failure, judge_parity, parity_check
from gates.checks.server import ModelServer, ServeError, model_server
from ml.serving.export import has_flavor
from ml.serving.signature import Signature


@dataclass
class ServingSession:
    """What the serving checks found; `server` is None when the candidate cannot be served."""

    server: ModelServer | None
    policy: dict
    export_failure: str | None = None
    latency: dict | None = None
    latency_failure: str | None = None
    server_exit: dict | None = None
    checks: list[dict] = field(default_factory=list)

    def judge(self, features: pd.DataFrame, expected: tuple[Any, Any] | None) -> list[dict]:
        """Export, parity and latency checks.

        `expected`: the registered scikit-learn model's (labels, probabilities) on `features`; None
        when it has no predict_proba (parity then fails: there is nothing to compare with).
        """
        latency_policy = self.policy["latency"]
        if self.server is None:
            reason = f"no fast serving path: {self.export_failure}"
            self.latency_failure = reason
            self.checks = [export_check(self.export_failure), parity_check(None, failure=reason)]
            self.checks += latency_checks(None, latency_policy, reason)
            return self.checks
        parity = None
        try:
            self.server.wait_ready(latency_policy["startup_timeout_s"])
            if expected is None:
                parity = parity_check(None, failure="the registered model has no predict_proba")
            else:
                signature = served_signature(self.server.port, self.server.name)
                parity = judge_parity(
                    self.server.port, self.server.name, features, signature, expected,
                    self.policy["parity"]["max_abs_proba_diff"],
                )  # fmt: skip
            self.latency = measure_latency(self.server, features, latency_policy)
        except ServeError as exc:
            self.latency_failure, self.server_exit = str(exc), exc.server_exit
            parity = parity or parity_check(None, failure=str(exc))
        self.checks = [export_check(None, "onnx"), parity]
        self.checks += latency_checks(self.latency, latency_policy, self.latency_failure)
        return self.checks

    def evidence(self) -> dict:
        """The `latency` record of the evidence (figures, attempts, verdict, or why nothing was measured)."""
        latency_policy = self.policy["latency"]
        record: dict = {
            "max_p99_ms": latency_policy["max_p99_ms"],
            "load_description": describe_load(latency_policy),
        }
        if self.latency is not None:
            record.update({k: v for k, v in self.latency.items() if k != "histogram"})
        else:
            record["failure"] = self.latency_failure
        if self.server_exit is not None:
            record["server_exit"] = self.server_exit
        return record


def served_signature(port: int, name: str) -> Signature:
    """The served graph's columns and kinds, read from the server's OIP v2 model metadata."""
    kinds = {"FP64": "numeric", "BOOL": "boolean", "BYTES": "categorical"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", f"/v2/models/{name}")
        reply = conn.getresponse()
        doc = orjson.loads(reply.read())
    except (OSError, http.client.HTTPException, orjson.JSONDecodeError) as exc:
        raise ServeError(f"cannot read the served model's metadata: {exc}") from None
    finally:
        conn.close()
    if reply.status != 200:
        raise ServeError(f"GET /v2/models/{name} answered {reply.status}")
    columns = tuple((i["name"], kinds[i["datatype"]]) for i in doc["inputs"])
    return Signature(columns, (), doc.get("platform", ""))


@contextmanager
def serving_session(model_dir: Path, policy: dict, name: str = "model") -> Iterator[ServingSession]:
    """Start serving the candidate's onnx flavor now (if it has one); always stopped on exit."""
    if not has_flavor(model_dir):
        yield ServingSession(None, policy, export_failure=export_failure(model_dir))
        return
    with model_server(model_dir, policy["latency"]["workers"], name) as server:
        yield ServingSession(server, policy)
