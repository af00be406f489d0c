"""`sluice evidence list|show`: every gate attempt a model has had, read from MLflow.

`list` shows each attempt (time, gate, verdict and counts, failing checks, inputs, evidence
digest, the versions whose tags cite it), oldest first; `show DIGEST` downloads one attempt's
evidence, checks its sha256 against the digest, and prints it (`--format json` prints the
document's exact bytes, so piping it to `sha256sum` gives the digest back). The reading lives in
`gates.evidence.history`; this module only presents it.

Exit codes: 0 shown, 1 the stored evidence does not match its digest, 2 usage or input error
(unknown model or digest, unreachable server).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

FORMATS_LIST = ("table", "json")
FORMATS_SHOW = ("table", "json", "markdown")


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="Sluice home (default .sluice or $SLUICE_HOME)")
    parser.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default $MLFLOW_TRACKING_URI, else the home's)"
    )


def register(subparsers: argparse._SubParsersAction, summary: str) -> None:
    evidence = subparsers.add_parser(
        "evidence",
        help=summary,
        description="The history of gate attempts kept in MLflow. Exit 0 shown, 1 evidence does not "
        "match its digest, 2 usage/input error.",
    )
    sub = evidence.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = sub.add_parser("list", help="every data- and model-gate attempt of a model, oldest first")
    listing.add_argument("--model", required=True, help="registered model (and experiment) name")
    listing.add_argument("--version", help="only the attempts on this version's training run")
    listing.add_argument("--format", choices=FORMATS_LIST, default="table")
    _store_options(listing)
    listing.set_defaults(func=run_list)
    show = sub.add_parser("show", help="one attempt's evidence, verified against its digest")
    show.add_argument("digest", metavar="DIGEST", help="evidence sha256 (at least 6 leading hex digits)")
    show.add_argument("--model", help="look only among this model's attempts (faster)")
    show.add_argument("--format", choices=FORMATS_SHOW, default="table")
    _store_options(show)
    show.set_defaults(func=run_show)


def _client(args: argparse.Namespace) -> Any:
    from ml.registry.client import client
    from sluice.cli.gate import check_reachable
    from sluice.paths import tracking_uri

    uri = tracking_uri(args.home, args.tracking_uri)
    check_reachable(uri)
    return client(uri)


def _verdict(verdict: str) -> str:
    return "FAILED" if verdict == "failed" else verdict


def _row(a) -> dict[str, str]:
    counts = a.counts or {}
    blocking = f"{counts['blocking_passed']}/{counts['blocking']}" if counts else "-"
    inputs = a.inputs.get("data_sha256", "")[:12]
    if a.inputs.get("holdout_sha256"):
        inputs += f" holdout {a.inputs['holdout_sha256'][:12]}"
    return {
        "created": a.created,
        "gate": a.kind,
        "verdict": _verdict(a.verdict) + (" (legacy)" if a.legacy else ""),
        "blocking": blocking,
        "inconcl": str(counts.get("inconclusive", "-")),
        "advisory": str(counts.get("advisory_findings", "-")),
        "digest": a.sha256[:12],
        "run": a.run_id[:12],
        "versions": ",".join(a.versions) or "-",
        "data": inputs or "-",
        "failing": ", ".join(a.failing) or (a.reason[:80] if a.reason else "-"),
    }


def _table(rows: list[dict[str, str]]) -> str:
    heads = list(rows[0])
    widths = {h: max(len(h), *(len(r[h]) for r in rows)) for h in heads[:-1]}
    line = lambda r: "  ".join(r[h].ljust(widths[h]) for h in heads[:-1]) + "  " + r[heads[-1]]  # noqa: E731
    return "\n".join([line({h: h for h in heads}), *map(line, rows)])


def run_list(args: argparse.Namespace) -> int:
    from gates.evidence.history import list_attempts

    attempts = list_attempts(_client(args), args.model, args.version)
    if args.format == "json":
        print(json.dumps([a.as_dict() for a in attempts], indent=2, ensure_ascii=False))
        return 0
    scope = f" version {args.version}" if args.version else ""
    print(f"{args.model}{scope}: {len(attempts)} gate attempt(s), oldest first")
    if attempts:
        print(_table([_row(a) for a in attempts]))
    return 0


def _describe(attempt, evidence: dict) -> list[str]:
    from gates.checks.result import check_label
    from gates.evidence import summarize
    from gates.evidence.summary import fix_for

    summary = summarize(evidence)
    cited = ", ".join(f"version {v}" for v in attempt.versions) or "no version"
    lines = [
        f"evidence {attempt.sha256} (sha256 of the document: verified)",
        f"  gate:     {attempt.kind}, attempt {attempt.attempt or '(legacy, before attempt folders)'}",
        f"  verdict:  {_verdict(summary.verdict)}",
        f"  created:  {evidence['created']}",
        f"  stored:   run {attempt.run_id}, artifact {attempt.artifact}",
        f"  cited by: {cited}",
        *[f"  {k}: {v}" for k, v in (evidence.get("subject") or {}).items() if v],
        "",
        evidence["summary"],
        summary.counts_line(),
    ]
    lines += [f"  FAIL {check_label(c)}: {c['reason']}; to proceed: {fix_for(c)}" for c in summary.failures]
    lines += [f"  INCONCLUSIVE {check_label(c)}: {c['reason']}" for c in summary.inconclusive]
    lines += [f"  advisory {check_label(c)}: {c['reason']}" for c in summary.advisories]
    return lines


def run_show(args: argparse.Namespace) -> int:
    from gates.evidence import to_markdown
    from gates.evidence.history import fetch_evidence, find_attempt

    client = _client(args)
    attempt = find_attempt(client, args.digest, args.model)
    with tempfile.TemporaryDirectory(prefix="sluice-evidence-") as tmp:
        evidence, data = fetch_evidence(client, attempt, Path(tmp))
    if args.format == "json":  # the exact bytes: `| sha256sum` gives the digest back
        binary = getattr(sys.stdout, "buffer", None)
        if binary is None:  # a text-only stream (tests, redirections in-process)
            sys.stdout.write(data.decode())
        else:
            sys.stdout.flush()
            binary.write(data)
            binary.flush()
    elif args.format == "markdown":
        print(to_markdown(evidence))
    else:
        print("\n".join(_describe(attempt, evidence)))
    return 0
