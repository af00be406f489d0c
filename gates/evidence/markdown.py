"""Evidence as Markdown: the body of a promotion pull request, written for the human approver.

Order follows what an approver needs: the verdict and its counts, what was tested (identities),
then what failed, was inconclusive or only advises, then the headline figures, then every check
folded away for the curious. Counts and words come from `gates.evidence.summary`, as everywhere.

Text from the data (column names, category values) is escaped: `<`, `>` and `&` as entities (a
PR body renders inline HTML), `|` inside table cells, and code spans fenced with more backticks
than the text holds, so a column named `<script>` or a|b reads as itself and breaks nothing.
"""

from __future__ import annotations

import re
from html import escape

from gates.checks.result import check_label, fmt
from gates.evidence.summary import Summary, fix_for, outcome, summarize


def _text(value: object) -> str:
    """Prose from data: entities for markup, one line."""
    text = fmt(value) if not isinstance(value, (list, dict)) else _compact(value)
    return escape(text, quote=False).replace("\n", " ").replace("\r", " ")


def _cell(value: object) -> str:
    return _text(value).replace("|", "\\|")


def _compact(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) if len(value) <= 8 else f"[{len(value)} items]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in list(value.items())[:6])
    return fmt(value)


def _code(value: object, *, in_table: bool = True) -> str:
    """A code span that holds any text: fenced with one backtick more than its longest run."""
    if value in (None, ""):
        return "—"
    text = str(value).replace("\n", " ").replace("\r", " ")
    if in_table:
        text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _subject_rows(evidence: dict) -> list[str]:
    s = evidence["subject"]
    rows = []
    if s.get("model"):
        model = _code(s["model"])
        if s.get("version"):
            model += f" version {_code(s['version'])}"
        rows.append(("Model", model))
    if s.get("model_uri"):
        rows.append(("Model URI", _code(s["model_uri"])))
    labels = {
        "data_sha256": "Data sha256",
        "holdout_sha256": "Holdout sha256",
        "reference_sha256": "Reference data sha256",
        "contract_sha256": "Contract sha256",
        "code_commit": "Code commit",
    }
    for key, label in labels.items():
        if s.get(key):
            rows.append((label, _code(s[key])))
    rows.append(("Gate run", _code(evidence["created"])))
    rows.append(("Decision", f"**{evidence.get('decision', '—')}**"))
    for src in evidence["policy"]["sources"]:
        rows.append(("Policy", f"{_code(src['path'])} (sha256 {_code(src['sha256'][:12])})"))
    return ["| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows]]


def _check_table(checks: list[dict] | tuple[dict, ...]) -> list[str]:
    lines = ["| Check | Result | Observed | Threshold | Reason |", "|---|---|---|---|---|"]
    for c in checks:
        result = outcome(c)
        result = f"**{result}**" if result in ("FAIL", "inconclusive") else result
        threshold = "—" if c["threshold"] is None else f"{c['comparator']} {_cell(c['threshold'])}"
        observed = "—" if c["observed"] is None else _cell(c["observed"])
        lines.append(
            f"| {_code(check_label(c))} | {result} | {observed} | {threshold} | {_cell(c['reason'])} |"
        )
    return lines


def _findings(summary: Summary) -> list[str]:
    lines: list[str] = []
    if summary.failures:
        fixes = dict.fromkeys(fix_for(c) for c in summary.failures)
        lines += [f"### Blocking failures ({len(summary.failures)})", "", *_check_table(summary.failures), ""]
        lines += [*[f"- To proceed: {_text(f)}" for f in fixes], ""]
    if summary.inconclusive:
        lines += [
            f"### Inconclusive ({len(summary.inconclusive)}): they block, without blaming the candidate",
            "",
            *_check_table(summary.inconclusive),
            "",
        ]
    if summary.advisories:
        lines += [
            f"### Advisory findings ({len(summary.advisories)}): they do not block",
            "",
            *_check_table(summary.advisories),
            "",
        ]
    return lines


def _model_figures(evidence: dict) -> list[str]:
    out: list[str] = []
    metrics = evidence.get("metrics") or {}
    cand = metrics.get("candidate") or {}
    champ = metrics.get("champion") or {}
    if cand:
        out += ["### Quality on the holdout", "", "| Metric | Candidate | Champion |", "|---|---|---|"]
        for key in ("accuracy", "f1", "roc_auc"):
            out.append(f"| {key} | {_cell(cand.get(key))} | {_cell(champ.get(key)) if champ else '—'} |")
        champion = evidence.get("champion")
        out.append("")
        out.append(
            f"Champion: version {_code(champion['version'])} (alias `{champion['alias']}`)."
            if champion
            else "Champion: none yet — first deployment, nothing to regress against."
        )
        out.append(f"Holdout: {fmt(cand.get('rows'))} rows, {fmt(cand.get('positives'))} positive.")
        out.append("")
    lat = evidence.get("latency") or {}
    if lat.get("requests"):
        out += [
            "### Latency (candidate served over HTTP with MLflow's scoring app)",
            "",
            f"Load: {_cell(lat.get('load_description'))}. Each latency is timed from the request's "
            "scheduled send time, so queueing behind a server that falls behind counts.",
            "",
            "| p50 ms | p95 ms | p99 ms | max ms | offered req/s | achieved req/s | "
            "capacity req/s (closed loop) | errors |",
            "|---|---|---|---|---|---|---|---|",
            f"| {fmt(lat.get('p50_ms'))} | {fmt(lat.get('p95_ms'))} | {fmt(lat.get('p99_ms'))} | "
            f"{fmt(lat.get('max_ms'))} | {fmt(lat.get('offered_rps'))} | {fmt(lat.get('achieved_rps'))} | "
            f"{'—' if lat.get('throughput_rps') is None else fmt(lat['throughput_rps'])} | "
            f"{fmt(lat.get('errors'))} |",
            "",
        ]
    fair = evidence.get("fairness") or {}
    if fair.get("groups"):
        out += [
            f"### Fairness: true-positive rate by {_code(fair.get('attribute'), in_table=False)}",
            "",
            "| Group | Positives | TPR | Compared |",
            "|---|---|---|---|",
        ]
        for group, row in fair["groups"].items():
            out.append(
                f"| {_cell(group)} | {fmt(row.get('positives'))} | {fmt(row.get('tpr'))} | "
                f"{'yes' if row.get('compared') else 'no (too few positives)'} |"
            )
        out.append("")
    return out


def _data_figures(evidence: dict) -> list[str]:
    data = evidence.get("data") or {}
    out = [
        f"Rows: {fmt(data.get('rows'))} current vs {fmt(data.get('reference_rows'))} reference. "
        f"Drift detected: **{'yes' if evidence.get('drift_detected') else 'no'}**"
        + (f" ({_text(', '.join(evidence['drifted_features']))})" if evidence.get("drifted_features") else "")
        + ".",
        "",
    ]
    features = data.get("features") or {}
    if features:
        out += [
            "### Drift by feature",
            "",
            "| Feature | Kind | PSI | KS D | Mean shift (sd) | Cramér's V | Unseen | Drifted |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for name, row in features.items():
            out.append(
                f"| {_code(name)} | {row.get('kind')} | {fmt(row.get('psi')) if 'psi' in row else '—'} | "
                f"{fmt(row.get('ks_statistic')) if 'ks_statistic' in row else '—'} | "
                f"{fmt(row.get('mean_shift_sigma')) if 'mean_shift_sigma' in row else '—'} | "
                f"{fmt(row.get('cramers_v')) if 'cramers_v' in row else '—'} | "
                f"{fmt(row.get('unseen_fraction')) if 'unseen_fraction' in row else '—'} | "
                f"{'**yes**' if row.get('drifted') else 'no'} |"
            )
        out.append("")
    return out


def to_markdown(evidence: dict) -> str:
    summary = summarize(evidence)
    subject = evidence["subject"]
    title = f"## {evidence['kind'].capitalize()} gate {summary.word}"
    if subject.get("model"):
        version = f" v{_text(subject['version'])}" if subject.get("version") else ""
        title += f" — {_text(subject['model'])}{version}"
    lines = [title, "", f"> {_text(evidence['summary'])}", "", summary.counts_line(), ""]
    lines += [*_subject_rows(evidence), "", *_findings(summary)]
    lines += _model_figures(evidence) if evidence["kind"] == "model" else _data_figures(evidence)
    if evidence.get("notes"):
        lines += ["### Notes", "", *[f"- {_text(n)}" for n in evidence["notes"]], ""]
    lines += [
        f"<details><summary>All {len(evidence['checks'])} checks</summary>",
        "",
        *_check_table(evidence["checks"]),
        "",
        "</details>",
        "",
        f"Evidence schema `{evidence['schema_version']}`; "
        "threshold equality passes (maxima `<=`, minima `>=`).",
        "",
    ]
    return "\n".join(lines)
