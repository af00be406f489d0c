"""`sluice run`'s engine: the training pipeline on this machine, with embedded defaults.

Order of work, cheapest first: resolve inputs and hash them, compute the run key, and if an
earlier run with the same key registered a version the registry still holds, answer from its
record (no kfp, no MLflow import: an unchanged re-run takes well under two seconds). Otherwise
check the inputs are readable (usage errors exit 2 before anything starts), run the pipeline with
KFP's local runner (`ml.runners.kfp_local`) and read the outcome from the steps' markers: a gate
failure is exit 1 with its reason, a registered (or reused) version exit 0. Promotion of that
version is the caller's business (`sluice.cli.run`): training never imports delivery code.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ml.registry.client import artifact_root_for
from ml.runners import records, runkey
from ml.runners.local_store import prepare_tracking_store
from ml.runners.summary import print_summary
from sluice import paths, scratch
from sluice.digest import sha256_file
from sluice.errors import SluiceError
from sluice.git import code_commit


@dataclass(frozen=True)
class RunRequest:
    """What `sluice run` was asked to train on; None means "the embedded default"."""

    data: str | None = None
    contract: str | None = None
    reference: str | None = None
    policy: str | None = None
    home: str | None = None
    tracking_uri: str | None = None
    only_on_drift: bool = False
    seed: int | None = None
    features: bool = False  # build the training set from the feature store (ml.features)
    # Training parameters file (default: the model's ml/training/tuned/<model>.yaml, if committed).
    params: str | None = None


@dataclass(frozen=True)
class RunInputs:
    data: Path
    reference: Path
    contract: Path
    policy: Path | None
    demo: bool
    feature_record: Path | None = None


@dataclass
class Outcome:
    exit_code: int
    record: dict[str, Any]


def resolve_inputs(request: RunRequest, home: paths.Home, out: TextIO) -> RunInputs:
    """The user's files, or the demo generated into <home>/data (once; reused while intact)."""
    policy = paths.require_file(Path(request.policy).resolve(), "policy") if request.policy else None
    if request.features:
        return feature_store_inputs(request, home, policy, out)
    if request.data is None:
        if request.contract or request.reference:
            raise SluiceError("--contract/--reference need --data (without --data the demo data set is used)")
        from ml.data.demo import ensure_demo

        started = time.perf_counter()
        files = ensure_demo(home.data / "credit-default")
        out.write(f"sluice: demo data in {files.current.parent} ({time.perf_counter() - started:.2f} s)\n")
        return RunInputs(files.current, files.reference, files.contract, policy, True)
    if not request.contract:
        raise SluiceError("--data needs --contract (the data contract YAML describing its columns)")
    data = Path(request.data).resolve()
    contract = Path(request.contract).resolve()
    # Without a reference snapshot the data is its own reference: drift is then zero by construction.
    reference = Path(request.reference).resolve() if request.reference else data
    for role, path in (("data", data), ("contract", contract), ("reference", reference)):
        paths.require_file(path, f"{role} file")
    return RunInputs(data, reference, contract, policy, False)


def feature_store_inputs(
    request: RunRequest, home: paths.Home, policy: Path | None, out: TextIO
) -> RunInputs:
    """The demo's training set built by the feature store, point-in-time correct (ml.features.record)."""
    if request.data or request.contract or request.reference:
        raise SluiceError(
            "--features builds the training set from the feature store: drop --data/--contract/--reference"
        )
    from ml.data.contract import load_contract
    from ml.data.demo import ensure_demo
    from ml.features.record import prepare

    started = time.perf_counter()
    demo = ensure_demo(home.data / "credit-default")
    snapshots, record = prepare(demo, load_contract(demo.contract), home.data, home.root / "features")
    out.write(
        f"sluice: training set from the feature store in {snapshots.current.parent} "
        f"({time.perf_counter() - started:.1f} s: apply, point-in-time join, materialize)\n"
    )
    return RunInputs(snapshots.current, snapshots.reference, demo.contract, policy, True, record)


def default_params(request: RunRequest, candidates: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The run's parameters; `candidates` are the effective ones (defaults merged with tuned values),
    so a change of the tuned parameters changes the run key."""
    from ml.training import candidates as c

    return {
        "seed": c.DEFAULT_SEED if request.seed is None else request.seed,
        "validation_fraction": c.DEFAULT_VALIDATION_FRACTION,
        "holdout_fraction": c.DEFAULT_HOLDOUT_FRACTION,
        "candidates": c.DEFAULT_CANDIDATES if candidates is None else candidates,
        "selection_tolerance": c.DEFAULT_SELECTION_TOLERANCE,
        "retrain_only_on_drift": request.only_on_drift,
    }


def contract_name(contract: Path) -> str:
    """The model a contract describes, read without pandas (the fast path must stay cheap)."""
    from sluice.yamlfile import load_yaml_mapping

    doc, _ = load_yaml_mapping(contract, "contract")
    name = doc.get("name")
    if not isinstance(name, str) or not name:
        raise SluiceError(f"contract {contract} has no name (the model it describes)")
    return name


def identity_for(inputs: RunInputs, params: dict[str, Any]) -> dict[str, Any]:
    found = {
        "data_sha256": sha256_file(inputs.data),
        "reference_sha256": sha256_file(inputs.reference),
        "contract_sha256": sha256_file(inputs.contract),
        "policy_sha256": sha256_file(inputs.policy) if inputs.policy else "",
        "code_commit": code_commit(),
        "code_version": runkey.code_fingerprint(),
        "params": params,
    }
    if inputs.feature_record is not None:  # the definitions are part of what was trained on
        from ml.features.record import read_record

        facts = read_record(str(inputs.feature_record))["facts"]
        found["feature_service_digest"] = facts["feature_service_digest"]
    return found


def try_fast_path(home: paths.Home, key: str, tracking_uri: str, out: TextIO) -> Outcome | None:
    record = records.read(home.root, key)
    if not record or record.get("tracking_uri") != tracking_uri or record.get("outcome") != "registered":
        return None
    if runkey.registry_has_version(tracking_uri, record["model_name"], record["version"], key) is not True:
        return None
    out.write(f"sluice: inputs, code and parameters unchanged (run key {key[:12]}); nothing to do\n")
    record = {**record, "reused": True, "fast_path": True}
    print_summary(record, out)
    return Outcome(0, record)


def preflight(inputs: RunInputs):
    """Usage errors before any pipeline starts: broken contract, unreadable, empty or header-only files."""
    from gates.gate_policy import load_policy
    from ml.data.contract import load_contract, read_table

    contract = load_contract(inputs.contract)
    for path in {inputs.data, inputs.reference}:
        read_table(path)  # unreadable, empty or header-only: exit 2, worded as `sluice gate data` words it
    if inputs.policy is not None:
        load_policy(inputs.policy, contract.name)  # a broken policy is a usage error, before any step
    return contract


def pipeline_arguments(
    inputs: RunInputs, identity: dict[str, Any], key: str, model: str, tracking_uri: str, home: paths.Home
) -> dict[str, Any]:
    params = identity["params"]
    return {
        "data_uri": str(inputs.data),
        "reference_uri": str(inputs.reference),
        "contract_uri": str(inputs.contract),
        **{f: identity[f] for f in ("data_sha256", "reference_sha256", "contract_sha256")},
        "model_name": model,
        "tracking_uri": tracking_uri,
        "artifact_root": artifact_root_for(tracking_uri, home.artifacts),
        "policy_uri": str(inputs.policy or ""),
        "feature_record_uri": str(inputs.feature_record or ""),
        "run_key": key,
        "code_commit": identity["code_commit"],
        "code_version": identity["code_version"],
        **{k: params[k] for k in ("retrain_only_on_drift", "seed", "validation_fraction")},
        **{k: params[k] for k in ("holdout_fraction", "selection_tolerance", "candidates")},
    }


def copy_evidence(markers: list[dict], dest: Path) -> Path | None:
    """Keep each gate attempt's files under `<dest>/<step>/<attempt>/`: a re-run adds, never replaces."""
    copied = None
    for marker in markers:
        if marker.get("evidence"):
            src = Path(marker["evidence"]).parent
            if src.is_dir():
                attempt = marker.get("attempt") or "unnamed"
                shutil.copytree(src, dest / marker["step"] / attempt, dirs_exist_ok=True)
                copied = dest
    return copied


def run(request: RunRequest, out: TextIO = sys.stdout) -> Outcome:
    started = time.perf_counter()
    scratch.sweep(lambda line: out.write(f"sluice: {line}\n"))  # what killed commands left behind
    home = paths.home(request.home).ensure()
    tracking_uri = paths.tracking_uri(home.root, request.tracking_uri)
    # A new SQLite store needs seconds of migrations: start them on the idle core now, while this
    # process makes, hashes and checks the inputs. (It is built under a temporary name and renamed
    # into place, so a run that stops before it is done leaves nothing half-built.)
    store_init = prepare_tracking_store(tracking_uri, home.root / "logs" / "mlflow-init.log", out)
    inputs = resolve_inputs(request, home, out)
    from ml.training.parameters import effective_candidates

    candidates, params_file = effective_candidates(contract_name(inputs.contract), request.params)
    if params_file is not None:
        out.write(f"sluice: training parameters from {params_file}\n")
    identity = identity_for(inputs, default_params(request, candidates))
    key = runkey.run_key(identity)
    fast = try_fast_path(home, key, tracking_uri, out)
    if fast is not None:
        fast.record["wall_s"] = round(time.perf_counter() - started, 3)
        records.write_last(home.root, fast.record)
        return fast
    contract = preflight(inputs)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = home.root / "logs" / f"run-{stamp}-{key[:12]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out.write(
        f"sluice: training {contract.name} on {inputs.data.name} "
        f"(sha256 {identity['data_sha256'][:12]}, run key {key[:12]}); log {log_path}\n"
    )
    arguments = pipeline_arguments(inputs, identity, key, contract.name, tracking_uri, home)
    record = {
        "run_key": key,
        "model_name": contract.name,
        "tracking_uri": tracking_uri,
        "identity": identity,
        "data": str(inputs.data),
        "reference": str(inputs.reference),
        "contract": str(inputs.contract),
        "log": str(log_path),
        "created": stamp,
    }
    return _execute(arguments, record, home, log_path, store_init, started, out)


def _execute(arguments, record, home, log_path, store_init: subprocess.Popen | None, started, out) -> Outcome:
    from ml.runners.kfp_local import run_pipeline, task_timings
    from ml.runners.verdict import read_verdict

    prepared = time.perf_counter()
    try:
        with scratch.directory("run") as work:  # task TMPDIR and KFP workspace; removed on any exit
            tap = run_pipeline(arguments, home.pipeline_root, log_path, out, work)
    finally:
        if store_init is not None:
            store_init.wait(timeout=120)
    record["tasks"] = task_timings(tap)
    record["phases"] = {
        "prepare_s": round(prepared - started, 3),
        "pipeline_s": round(time.perf_counter() - prepared, 3),
    }
    copied = copy_evidence(tap.markers, home.evidence / record["run_key"][:12])
    record["evidence_dir"] = str(copied) if copied else None
    logged = tap.marker_for("log") or {}
    record.update(
        candidates=logged.get("candidates"),
        selected=logged.get("candidate"),
        holdout=logged.get("holdout"),
        mlflow_run_id=logged.get("run_id"),
    )

    def finish(outcome: str, code: int) -> Outcome:
        record.update(outcome=outcome, wall_s=round(time.perf_counter() - started, 3))
        records.write_last(home.root, record)
        if outcome == "registered":
            records.write(home.root, record)
        return Outcome(code, record)

    return read_verdict(tap, record, finish, log_path, out)
