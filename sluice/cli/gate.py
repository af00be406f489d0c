"""`sluice gate data|model`: run a gate from the command line and leave evidence.

Exit codes: 0 the gate passed, 1 it failed or was inconclusive (evidence written, one refusal line
on stderr ending with how to proceed), 2 usage or input error (one line on stderr, nothing
written). Heavy imports (pandas, mlflow, sklearn) stay inside the handlers.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from pathlib import Path

from sluice import scratch, tags
from sluice.errors import Refused, SluiceError


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    gate = subparsers.add_parser(
        "gate",
        help=summary,
        description="Run a validation gate. Exit 0 passed, 1 failed (evidence written), 2 usage/input error.",
    )
    sub = gate.add_subparsers(dest="gate", metavar="GATE", required=True)

    data = sub.add_parser("data", help="contract, volume, quality and drift of a data snapshot")
    data.add_argument("--contract", required=True, help="data contract YAML")
    data.add_argument("--reference", required=True, help="reference snapshot (CSV or Parquet)")
    data.add_argument("--current", required=True, help="current snapshot (CSV or Parquet)")
    data.add_argument(
        "--policy", help="gate policy YAML (default: gates/gate_policy/<model>.yaml or default.yaml)"
    )
    data.add_argument("--as-of", help="ISO 8601 time freshness is judged at (default: now), for re-runs")
    data.add_argument("--out", required=True, help="evidence JSON path (.md and .html are written beside it)")
    data.set_defaults(func=run_data)

    model = sub.add_parser("model", help="quality vs champion, latency and fairness of a registered version")
    model.add_argument("--model", required=True, help="registered model name")
    model.add_argument("--version", required=True, help="model version to gate")
    model.add_argument(
        "--policy", help="gate policy YAML (default: gates/gate_policy/<model>.yaml or default.yaml)"
    )
    model.add_argument("--home", help="Sluice home (default .sluice or $SLUICE_HOME)")
    model.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else the home's)"
    )
    model.add_argument("--champion-alias", default="champion", help="alias of the version to compare with")
    model.add_argument("--no-attach", action="store_true", help="do not log evidence to the MLflow version")
    model.add_argument(
        "--out", required=True, help="evidence JSON path (.md and .html are written beside it)"
    )
    model.set_defaults(func=run_model)


def _out_parts(out: str) -> tuple[Path, str]:
    path = Path(out)
    if path.suffix != ".json":
        raise SluiceError(f"--out must name a .json file, got {out}")
    return path.parent, path.stem


def _report(evidence: dict, out: Path) -> int:
    """The evidence's own summary and counts, each finding by kind; a refusal raises `Refused`."""
    from gates.checks.result import check_label
    from gates.evidence import summarize
    from gates.evidence.summary import fix_for

    summary = summarize(evidence)
    print(evidence["summary"])
    print(summary.counts_line())
    for check in summary.failures:
        print(f"  FAIL {check_label(check)}: {check['reason']}; to proceed: {fix_for(check)}")
    for check in summary.inconclusive:
        print(f"  INCONCLUSIVE {check_label(check)}: {check['reason']}; to proceed: {fix_for(check)}")
    for check in summary.advisories:
        print(f"  advisory {check_label(check)}: {check['reason']}")
    print(f"evidence: {out} (+ .md, .html)")
    if not summary.passed:
        raise Refused(summary.refusal())
    return 0


def _as_of(text: str | None):
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise SluiceError(f"--as-of must be an ISO 8601 time, got {text!r}") from exc
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_data(args: argparse.Namespace) -> int:
    from gates.data_gate import run_data_gate

    out_dir, stem = _out_parts(args.out)
    evidence = run_data_gate(
        args.contract, args.reference, args.current, args.policy, out_dir, stem=stem, as_of=_as_of(args.as_of)
    )
    return _report(evidence, out_dir / f"{stem}.json")


def check_reachable(tracking_uri: str) -> None:
    """Fail in seconds with one line, instead of MLflow's minutes of retries, when nothing answers."""
    if tracking_uri.startswith(("http://", "https://")):
        url = tracking_uri.rstrip("/") + "/health"
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - URL scheme checked above
                if resp.status >= 500:
                    raise SluiceError(f"MLflow server at {tracking_uri} is unhealthy (HTTP {resp.status})")
        except urllib.error.HTTPError as exc:
            if exc.code >= 500:
                raise SluiceError(f"MLflow server at {tracking_uri} is unhealthy (HTTP {exc.code})") from exc
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise SluiceError(f"MLflow server at {tracking_uri} is unreachable: {reason}") from exc
    elif tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri.removeprefix("sqlite:///"))
        if not db.is_file():
            raise SluiceError(f"no MLflow store at {db} (run the pipeline first, or pass --tracking-uri)")


def _download(tracking_uri: str, run_id: str, artifact: str, dst: Path, what: str) -> Path:
    import mlflow.artifacts

    try:
        return Path(
            mlflow.artifacts.download_artifacts(
                run_id=run_id, artifact_path=artifact, dst_path=str(dst), tracking_uri=tracking_uri
            )
        )
    except Exception as exc:  # MlflowException / OSError: the artifact is not there
        raise SluiceError(
            f"run {run_id} has no artifact {artifact} ({what}, logged by the training pipeline)"
        ) from exc


def run_model(args: argparse.Namespace) -> int:
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    from gates.model_gate import attach_evidence, run_model_gate
    from ml.data.contract import load_contract, read_table, sha256_file
    from sluice.paths import tracking_uri as resolve_tracking_uri

    out_dir, stem = _out_parts(args.out)
    tracking = resolve_tracking_uri(args.home, args.tracking_uri)
    check_reachable(tracking)
    client = MlflowClient(tracking_uri=tracking, registry_uri=tracking)
    try:
        version = client.get_model_version(args.model, str(args.version))
    except MlflowException as exc:
        raise SluiceError(f"model {args.model} version {args.version} not found at {tracking}") from exc
    if not version.run_id:
        raise SluiceError(
            f"model {args.model} version {args.version} has no training run to read its holdout from"
        )
    with scratch.directory("gate") as tmp:
        holdout_path = _download(tracking, version.run_id, "data/holdout.parquet", Path(tmp), "holdout")
        contract_path = _download(tracking, version.run_id, "data/contract.yaml", Path(tmp), "data contract")
        contract = load_contract(contract_path)
        holdout = read_table(holdout_path)
        identity = tags.read_identity(version.tags)
        subject = {
            "version": str(version.version),
            "holdout_sha256": sha256_file(holdout_path),
            "data_sha256": identity.get(tags.DATA_SHA256_FIELD),
            "reference_sha256": identity.get(tags.REFERENCE_SHA256_FIELD),
            "model_code_commit": identity.get(tags.CODE_COMMIT_FIELD),
        }
        evidence = run_model_gate(
            f"models:/{args.model}/{version.version}",
            holdout,
            contract,
            args.policy,
            tracking_uri=tracking,
            model_name=args.model,
            champion_alias=args.champion_alias,
            subject={k: v for k, v in subject.items() if v},
            out_dir=out_dir,
            stem=stem,
        )
    paths = [out_dir / f"{stem}{ext}" for ext in (".json", ".md", ".html")]
    if not args.no_attach:
        digest = attach_evidence(client, args.model, version.version, paths)
        print(
            f"attached to {args.model} v{version.version}: {tags.EVIDENCE_SHA256}={digest}", file=sys.stderr
        )
    return _report(evidence, paths[0])
