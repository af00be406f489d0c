"""What keeping every gate attempt costs, against an MLflow store on SQLite.

Prints, side by side and measured in the same run:
  * anchor: logging one gate's three evidence files under `evidence/` (what the gates did before
    attempts had folders),
  * `record_attempt` (the same files under `evidence/<attempt>/` plus the run's index tag) and
    `tag_run_verdict` (the run's verdict tags),
  * `list_attempts` over N attempts spread over several runs (what `sluice evidence list` does
    after importing MLflow).

    python benchmarks/bench_evidence.py [--repeat 7] [--attempts 60] [--runs 6]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path


def _evidence(out: Path, index: int) -> Path:
    """A real model-gate-shaped document, different per attempt (so each has its own identity)."""
    from gates.checks.result import make_check
    from gates.evidence import new_evidence, write_evidence

    f1 = make_check("quality.f1", "quality", 0.6 + index * 1e-4, 0.5, ">=", policy_key="model.quality.min_f1")
    policy = {"sources": [{"path": "gates/gate_policy/default.yaml", "sha256": "ab" * 32}], "values": {}}
    subject = {"model": "bench", "code_commit": "0" * 40}
    doc = new_evidence("model", [f1], subject, {"policy": policy, "metrics": {}})
    return write_evidence(doc, out / f"attempt-{index}", "model-evidence")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--attempts", type=int, default=60)
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()

    from mlflow import MlflowClient

    from gates.evidence.history import list_attempts, record_attempt, tag_run_verdict

    with tempfile.TemporaryDirectory(prefix="bench-evidence-") as tmp:
        work = Path(tmp)
        client = MlflowClient(f"sqlite:///{work / 'mlflow.db'}")
        experiment = client.create_experiment("bench", artifact_location=(work / "artifacts").as_uri())
        runs = [client.create_run(experiment).info.run_id for _ in range(args.runs)]
        docs = [_evidence(work, i) for i in range(max(args.attempts, args.repeat))]
        anchor, record, verdict = [], [], []
        for i in range(args.repeat):
            t = time.perf_counter()
            client.log_artifacts(runs[0], str(docs[i].parent), "legacy-evidence")
            anchor.append(time.perf_counter() - t)
            t = time.perf_counter()
            attempt = record_attempt(client, runs[1], docs[i])
            record.append(time.perf_counter() - t)
            t = time.perf_counter()
            tag_run_verdict(client, runs[1], attempt)
            verdict.append(time.perf_counter() - t)
        for i in range(args.repeat, args.attempts):
            record_attempt(client, runs[i % args.runs], docs[i])
        listing = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            found = list_attempts(client, "bench")
            listing.append(time.perf_counter() - t)
    ms = lambda xs: f"{statistics.median(xs) * 1000:7.1f} ms"  # noqa: E731
    print(f"load average {os.getloadavg()[0]:.2f}; medians of {args.repeat}")
    print(f"anchor: log 3 evidence files (old layout)       {ms(anchor)}")
    print(f"record_attempt (files + index tag)               {ms(record)}")
    print(f"tag_run_verdict (run's verdict tags)             {ms(verdict)}")
    print(f"list_attempts, {len(found)} attempts on {args.runs} runs          {ms(listing)}")


if __name__ == "__main__":
    main()
