"""`sluice run`: the training pipeline on this machine, with KFP's local runner and embedded defaults.

Order of work, cheapest first: resolve inputs and hash them, compute the run key, and if an
earlier run with the same key registered a version the registry still holds, answer from its
record (no kfp, no MLflow import: an unchanged re-run takes well under two seconds). Otherwise
check the inputs are readable (usage errors exit 2 before anything starts), run the pipeline with
`kfp.local.SubprocessRunner(use_venv=False)` and caching on, and read the outcome from the steps'
markers: a gate failure exits 1 with its reason, a registered (or reused) version exits 0.
A registered version is then promoted into the staging overlay of the repository the run happens
in, as a commit on a local branch (`ml.promote_local`; `--repo`, `--no-promote`).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from ml import paths, runkey
from ml.digest import sha256_file
from ml.errors import SluiceError

GATE_FAILED = 1


@dataclass(frozen=True)
class RunInputs:
    data: Path
    reference: Path
    contract: Path
    policy: Path | None
    demo: bool


@dataclass
class Outcome:
    exit_code: int
    record: dict[str, Any]


def resolve_inputs(args, home: paths.Home, out: TextIO) -> RunInputs:
    """The user's files, or the demo generated into <home>/data (once; reused while intact)."""
    policy = Path(args.policy).resolve() if getattr(args, "policy", None) else None
    if policy is not None and not policy.is_file():
        raise SluiceError(f"policy not found: {policy}")
    if args.data is None:
        if args.contract or args.reference:
            raise SluiceError("--contract/--reference need --data (without --data the demo data set is used)")
        from ml.data.demo import ensure_demo

        started = time.perf_counter()
        files = ensure_demo(home.data / "credit-default")
        out.write(f"sluice: demo data in {files.current.parent} ({time.perf_counter() - started:.2f} s)\n")
        return RunInputs(files.current, files.reference, files.contract, policy, True)
    if not args.contract:
        raise SluiceError("--data needs --contract (the data contract YAML describing its columns)")
    data = Path(args.data).resolve()
    contract = Path(args.contract).resolve()
    # Without a reference snapshot the data is its own reference: drift is then zero by construction.
    reference = Path(args.reference).resolve() if args.reference else data
    for role, path in (("data", data), ("contract", contract), ("reference", reference)):
        if not path.is_file():
            raise SluiceError(f"{role} file not found: {path}")
    return RunInputs(data, reference, contract, policy, False)


def identity_for(inputs: RunInputs, params: dict[str, Any]) -> dict[str, Any]:
    return {
        "data_sha256": sha256_file(inputs.data),
        "reference_sha256": sha256_file(inputs.reference),
        "contract_sha256": sha256_file(inputs.contract),
        "policy_sha256": sha256_file(inputs.policy) if inputs.policy else "",
        "code_commit": paths.git_commit(),
        "code_version": runkey.code_fingerprint(),
        "params": params,
    }


def default_params(args) -> dict[str, Any]:
    from ml.training import candidates as c

    return {
        "seed": args.seed,
        "validation_fraction": c.DEFAULT_VALIDATION_FRACTION,
        "holdout_fraction": c.DEFAULT_HOLDOUT_FRACTION,
        "candidates": c.DEFAULT_CANDIDATES,
        "selection_tolerance": c.DEFAULT_SELECTION_TOLERANCE,
        "retrain_only_on_drift": bool(getattr(args, "only_on_drift", False)),
    }


def try_fast_path(home: paths.Home, key: str, tracking_uri: str, out: TextIO) -> Outcome | None:
    record = runkey.read_record(home.root, key)
    if not record or record.get("tracking_uri") != tracking_uri or record.get("outcome") != "registered":
        return None
    if runkey.registry_has_version(tracking_uri, record["model_name"], record["version"], key) is not True:
        return None
    out.write(f"sluice: inputs, code and parameters unchanged (run key {key[:12]}); nothing to do\n")
    record = {**record, "reused": True}
    print_summary(record, out)
    return Outcome(0, record)


def promote(args, record: dict[str, Any], tracking_uri: str, home: paths.Home, out: TextIO) -> None:
    """The laptop loop's last step (see ml.promote_local); updates the record with the branch."""
    if getattr(args, "no_promote", False):
        out.write("  not promoted (--no-promote)\n")
        return
    from ml.promote_local import promote_after_run

    promotion = promote_after_run(
        record,
        repo_option=getattr(args, "repo", None),
        tracking_uri=tracking_uri,
        home_root=home.root,
        out=out,
    )
    if promotion is not None and promotion != record.get("promotion"):
        record["promotion"] = promotion
        stored = {k: v for k, v in record.items() if k != "fast_path"}
        _write_json_atomic(runkey.record_path(home.root, record["run_key"]), stored)


def preflight(inputs: RunInputs):
    """Usage errors before any pipeline starts: broken contract, unreadable or empty files."""
    from ml.data.contract import load_contract, read_table

    contract = load_contract(inputs.contract)
    for path in {inputs.data, inputs.reference}:
        frame = read_table(path)
        if len(frame) == 0:
            raise SluiceError(f"data file {path} has a header but no rows")
    if inputs.policy is not None:
        from gates.policy import load_policy

        load_policy(inputs.policy, contract.name)  # a broken policy is a usage error, before any step
    return contract


def artifact_root_for(tracking_uri: str, home: paths.Home) -> str:
    """Local stores keep artifacts under the home; a server decides for itself."""
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        return ""
    return home.artifacts.as_uri()


def sqlite_init_lock(tracking_uri: str) -> Path | None:
    if not tracking_uri.startswith("sqlite:///"):
        return None
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    return db.with_name(db.name + ".init.lock")


def prepare_tracking_store(tracking_uri: str, log: Path) -> subprocess.Popen | None:
    """Create a new SQLite tracking store in the background while the first steps run.

    MLflow builds its schema with about thirty migrations on first use (seconds on this machine),
    which would otherwise sit on the critical path of the log step. The child holds an exclusive
    flock on `<db>.init.lock` (inherited descriptor) until it exits; MLflow steps take a shared
    lock before touching the store, so they wait for a half-built schema instead of racing it.
    """
    lock_path = sqlite_init_lock(tracking_uri)
    if lock_path is None or Path(tracking_uri.removeprefix("sqlite:///")).exists():
        return None
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with lock_path.open("a+") as lock, log.open("ab") as err:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import sys, mlflow; mlflow.MlflowClient(sys.argv[1]).search_experiments(max_results=1)",
                tracking_uri,
            ],
            pass_fds=(lock.fileno(),),
            stdout=subprocess.DEVNULL,
            stderr=err,
        )


def run_pipeline(arguments: dict[str, Any], home: paths.Home, log_path: Path, out: TextIO):
    """Execute the pipeline with the local runner; returns the ProgressTap holding what happened."""
    import builtins
    import logging
    import warnings

    from kfp import local

    from ml.pipelines.training import DEFAULT_BASE_IMAGE, build_pipeline
    from ml.progress import ProgressTap

    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(home.pipeline_root),
        raise_on_error=False,
        enable_caching=True,
    )
    pipeline = build_pipeline(DEFAULT_BASE_IMAGE)
    root = logging.getLogger()
    # kfp 2.17.0 swaps builtins.print per task and restores it from threads in any order, which
    # can leave an indenting print installed for good; put everything back ourselves.
    saved = (root.level, root.handlers[:], sys.stdout, builtins.print)
    with log_path.open("w") as log, warnings.catch_warnings():
        # The runner warns that resource requests and display names are ignored locally; expected.
        warnings.simplefilter("ignore")
        tap = ProgressTap(log, out)
        handler = logging.StreamHandler(tap)
        handler.setFormatter(logging.Formatter("%(levelname)s - %(message)s"))
        root.handlers[:] = [handler]
        root.setLevel(logging.INFO)
        sys.stdout = tap
        try:
            pipeline(**arguments)
        finally:
            sys.stdout, builtins.print = saved[2], saved[3]
            root.setLevel(saved[0])
            root.handlers[:] = saved[1]
            tap.flush()
    return tap


def copy_evidence(markers: list[dict], dest: Path) -> Path | None:
    copied = None
    for marker in markers:
        if marker.get("evidence"):
            src = Path(marker["evidence"]).parent
            if src.is_dir():
                target = dest / marker["step"]
                shutil.copytree(src, target, dirs_exist_ok=True)
                copied = dest
    return copied


def print_summary(record: dict[str, Any], out: TextIO) -> None:
    candidates = record.get("candidates") or []
    if candidates:
        out.write("\n  candidate              accuracy      f1  roc_auc   (validation split)\n")
        for cand in candidates:
            star = "*" if cand["name"] == record.get("selected") else " "
            m = cand["metrics"]
            out.write(f"{star} {cand['name']:<22} {m['accuracy']:8.4f} {m['f1']:7.4f} {m['roc_auc']:8.4f}\n")
    holdout = record.get("holdout") or {}
    if holdout:
        out.write(
            "  holdout of the winner:  "
            + "  ".join(f"{k} {holdout[k]:.4f}" for k in ("accuracy", "f1", "roc_auc") if k in holdout)
            + "\n"
        )
    if record.get("outcome") == "registered":
        how = "reused" if record.get("reused") else "registered"
        out.write(f"\n  {how} model version {record['model_name']} {record['version']} (alias challenger)\n")
    if record.get("evidence_dir"):
        out.write(f"  evidence: {record['evidence_dir']}\n")
    uri = record.get("tracking_uri", "")
    if uri.startswith(("http://", "https://")):
        out.write(f"  browse: {uri}\n")
    elif uri:
        out.write(f"  browse: mlflow ui --backend-store-uri {uri}\n")


def _write_json_atomic(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
    os.replace(tmp, path)


def task_timings(tap) -> list[dict[str, Any]]:
    """Per task: when it ran (offsets from the pipeline's start, to see overlap), the wall time
    the runner saw, the task process's age when the step ended, and the step's own work."""
    return [
        {
            "task": t.name,
            "status": t.status,
            "start_s": round(t.started - tap.opened, 3),
            "wall_s": round(t.wall, 3),
            "process_s": t.marker.get("process_s"),
            "compute_s": t.compute,
            "step": t.marker.get("step"),
        }
        for t in tap.tasks
    ]


def run(args, out: TextIO = sys.stdout) -> Outcome:
    started = time.perf_counter()
    from ml.promote_local import check_repo_option

    check_repo_option(getattr(args, "repo", None))
    home = paths.home(args.home).ensure()
    tracking_uri = paths.tracking_uri(home.root, args.tracking_uri)
    # A new SQLite store needs seconds of migrations: start them on the idle core now, while this
    # process makes, hashes and checks the inputs. (Should those checks fail, the child still
    # completes the empty store on its own: a half-migrated store would be the worse outcome.)
    store_init = prepare_tracking_store(tracking_uri, home.root / "logs" / "mlflow-init.log")
    inputs = resolve_inputs(args, home, out)
    params = default_params(args)
    identity = identity_for(inputs, params)
    key = runkey.run_key(identity)
    fast = try_fast_path(home, key, tracking_uri, out)
    if fast is not None:
        promote(args, fast.record, tracking_uri, home, out)
        _write_json_atomic(
            home.root / "runs" / "last-run.json",
            {**fast.record, "fast_path": True, "wall_s": round(time.perf_counter() - started, 3)},
        )
        return fast

    contract = preflight(inputs)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    log_path = home.root / "logs" / f"run-{stamp}-{key[:12]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    out.write(
        f"sluice: training {contract.name} on {inputs.data.name} "
        f"(sha256 {identity['data_sha256'][:12]}, run key {key[:12]}); log {log_path}\n"
    )
    arguments = {
        "data_uri": str(inputs.data),
        "reference_uri": str(inputs.reference),
        "contract_uri": str(inputs.contract),
        "data_sha256": identity["data_sha256"],
        "reference_sha256": identity["reference_sha256"],
        "contract_sha256": identity["contract_sha256"],
        "model_name": contract.name,
        "tracking_uri": tracking_uri,
        "artifact_root": artifact_root_for(tracking_uri, home),
        "policy_uri": str(inputs.policy or ""),
        "retrain_only_on_drift": params["retrain_only_on_drift"],
        "run_key": key,
        "code_commit": identity["code_commit"],
        "code_version": identity["code_version"],
        "seed": params["seed"],
        "validation_fraction": params["validation_fraction"],
        "holdout_fraction": params["holdout_fraction"],
        "selection_tolerance": params["selection_tolerance"],
        "candidates": params["candidates"],
    }
    prepared = time.perf_counter()
    try:
        tap = run_pipeline(arguments, home, log_path, out)
    finally:
        if store_init is not None:
            store_init.wait(timeout=120)
    pipeline_s = time.perf_counter() - prepared
    record: dict[str, Any] = {
        "run_key": key,
        "model_name": contract.name,
        "tracking_uri": tracking_uri,
        "identity": identity,
        "data": str(inputs.data),
        "reference": str(inputs.reference),
        "contract": str(inputs.contract),
        "log": str(log_path),
        "tasks": task_timings(tap),
        "phases": {"prepare_s": round(prepared - started, 3), "pipeline_s": round(pipeline_s, 3)},
        "created": stamp,
    }
    record["evidence_dir"] = str(copy_evidence(tap.markers, home.evidence / key[:12]) or "") or None
    logged = tap.marker_for("log") or {}
    record.update(
        candidates=logged.get("candidates"),
        selected=logged.get("candidate"),
        holdout=logged.get("holdout"),
        mlflow_run_id=logged.get("run_id"),
    )

    def finish(outcome: str, code: int) -> Outcome:
        record.update(outcome=outcome, wall_s=round(time.perf_counter() - started, 3))
        _write_json_atomic(home.root / "runs" / "last-run.json", record)
        if outcome == "registered":
            _write_json_atomic(runkey.record_path(home.root, key), record)
        return Outcome(code, record)

    failures = tap.failures()
    if failures:
        first = failures[0]
        reason = first.marker.get("error") or (first.last_lines[-1] if first.last_lines else "no output")
        finish("error", 2)
        raise SluiceError(f"pipeline step {first.name} failed: {reason} (log: {log_path})")
    data_gate = tap.marker_for("data-gate")
    if data_gate is None:
        finish("error", 2)
        raise SluiceError(f"the pipeline ended before its data gate ran (log: {log_path})")
    if not data_gate.get("passed"):
        record["reason"] = f"data gate failed: {data_gate.get('reason')}"
        return _gate_failed(record, finish, out)
    if not data_gate.get("train"):
        out.write("sluice: the data gate passed and found no drift; nothing was retrained (no-op run)\n")
        if record.get("evidence_dir"):
            out.write(f"  evidence: {record['evidence_dir']}\n")
        return finish("no-op", 0)
    model_gate = tap.marker_for("model-gate")
    if model_gate is None:
        finish("error", 2)
        raise SluiceError(f"the pipeline ended before its model gate ran (log: {log_path})")
    if not model_gate.get("passed"):
        record["reason"] = f"model gate failed: {model_gate.get('reason')}"
        print_summary(record, out)
        return _gate_failed(record, finish, out)
    registered = tap.marker_for("register")
    if registered is None:
        finish("error", 2)
        raise SluiceError(f"the model gate passed but nothing was registered (log: {log_path})")
    record.update(version=registered["version"], reused=bool(registered.get("reused")))
    if record["reused"]:
        out.write(f"sluice: reused version {record['version']} (same data, code and parameters)\n")
    result = finish("registered", 0)
    print_summary(record, out)
    promoting = time.perf_counter()
    promote(args, record, tracking_uri, home, out)
    if not getattr(args, "no_promote", False):
        record["phases"]["promote_s"] = round(time.perf_counter() - promoting, 3)
        record["wall_s"] = round(time.perf_counter() - started, 3)
        _write_json_atomic(home.root / "runs" / "last-run.json", record)
    out.write(f"  done in {time.perf_counter() - started:.1f} s\n")
    return result


def _gate_failed(record: dict, finish, out: TextIO) -> Outcome:
    result = finish("gate-failed", GATE_FAILED)
    if record.get("evidence_dir") and not record.get("candidates"):  # else print_summary showed it
        out.write(f"  evidence: {record['evidence_dir']}\n")
    out.write("  nothing was registered\n")
    print(f"sluice: {record['reason']}", file=sys.stderr)
    return result
