"""Evidence as one self-contained HTML page: tables plus inline SVG plots, no external resources.

Everything taken from the evidence is HTML-escaped: column names, feature names and category
values come from data files, and a report must not become a way to inject markup into a
reviewer's browser. The page carries no script at all. Verdict, counts and section sizes come from
`gates.evidence.summary`, the same words as the Markdown and the CLI.
"""

from __future__ import annotations

import json
from html import escape

from gates.checks.result import check_label, fmt
from gates.evidence.summary import Summary, fix_for, outcome, summarize
from gates.evidence.svg import confusion_matrix_svg, histogram_svg, latency_svg

LATENCY_FIELDS = (
    "server",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "mean_ms",
    "max_ms",
    "offered_rps",
    "achieved_rps",
    "min_achieved_rps",
    "send_lag_p99_ms",
    "throughput_rps",
    "requests",
    "concurrency",
    "rows_per_request",
    "warmup_requests",
    "errors",
    "startup_s",
    "ready_wait_s",
)
RESULT_CLASSES = {
    "skipped": "skip", "pass": "pass", "FAIL": "fail", "inconclusive": "fail", "advisory": "adv"
}

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1100px;
color:#222}
h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0;font-size:.85rem}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}.pass{color:#1a7f37}.fail{color:#c00;font-weight:bold}.adv{color:#9a6700}
.skip{color:#777}.verdict-pass{background:#e6f4ea}.verdict-fail{background:#fde7e9}
.banner{padding:.75rem 1rem;border-radius:6px}code{font-size:.85em}.plots svg{margin:.5rem 1rem .5rem 0}
"""


def _e(value: object) -> str:
    if isinstance(value, (list, dict)):
        return escape(json.dumps(value, ensure_ascii=False)[:300])
    return escape(fmt(value))


def _result(check: dict) -> str:
    word = outcome(check)
    return f'<span class="{RESULT_CLASSES[word]}">{word}</span>'


def _checks_table(checks: list[dict] | tuple[dict, ...]) -> str:
    rows = "".join(
        f"<tr><td><code>{escape(check_label(c))}</code></td><td>{_result(c)}</td>"
        f"<td>{'—' if c['observed'] is None else _e(c['observed'])}</td>"
        f"<td>{'—' if c['threshold'] is None else escape(c['comparator']) + ' ' + _e(c['threshold'])}</td>"
        f"<td>{escape(c['reason'])}</td></tr>"
        for c in checks
    )
    return (
        "<table><tr><th>Check</th><th>Result</th><th>Observed</th><th>Threshold</th><th>Reason</th></tr>"
        f"{rows}</table>"
    )


def _kv_table(rows: list[tuple[str, object]]) -> str:
    body = "".join(
        f"<tr><th>{escape(k)}</th><td>{_e(v) if v is not None else '—'}</td></tr>" for k, v in rows
    )
    return f"<table>{body}</table>"


def _subject(evidence: dict) -> str:
    s = evidence["subject"]
    keys = (
        "model",
        "version",
        "model_uri",
        "data_sha256",
        "holdout_sha256",
        "reference_sha256",
        "contract_sha256",
        "code_commit",
    )
    rows = [(k, s.get(k)) for k in keys if s.get(k)]
    rows += [("created", evidence["created"]), ("decision", evidence.get("decision"))]
    rows += [(f"policy {src['path']}", src["sha256"]) for src in evidence["policy"]["sources"]]
    return _kv_table(rows)


def _quality_section(evidence: dict) -> list[str]:
    metrics = evidence.get("metrics") or {}
    cand, champ = metrics.get("candidate") or {}, metrics.get("champion") or {}
    if not cand:
        return []
    rows = "".join(
        f"<tr><td>{k}</td><td>{_e(cand.get(k))}</td><td>{_e(champ.get(k)) if champ else '—'}</td></tr>"
        for k in ("accuracy", "f1", "roc_auc")
    )
    champion = evidence.get("champion")
    who = (
        f"Champion: version {escape(str(champion['version']))} (alias {escape(champion['alias'])})"
        if champion
        else "No champion yet: first deployment, nothing to regress against."
    )
    return [
        f"<h2>Quality on the holdout</h2><table><tr><th>Metric</th><th>Candidate</th>"
        f"<th>Champion</th></tr>{rows}</table><p>{who}</p>"
    ]


def _latency_section(lat: dict) -> list[str]:
    if not lat.get("requests"):
        return []
    return [
        "<h2>Latency</h2>"
        f"<p>Load: {escape(str(lat.get('load_description') or '—'))}. Each latency is timed from the "
        "request's scheduled send time, so queueing behind a server that falls behind counts.</p>"
        + _kv_table([(k, lat.get(k)) for k in LATENCY_FIELDS])
    ]


def _fairness_section(fair: dict) -> list[str]:
    if not fair.get("groups"):
        return []
    rows = "".join(
        f"<tr><td>{escape(str(g))}</td><td>{_e(r.get('positives'))}</td><td>{_e(r.get('tpr'))}</td>"
        f"<td>{'yes' if r.get('compared') else 'no (too few positives)'}</td></tr>"
        for g, r in fair["groups"].items()
    )
    return [
        f"<h2>Fairness: TPR by {escape(str(fair.get('attribute')))}</h2><table><tr><th>Group</th>"
        f"<th>Positives</th><th>TPR</th><th>Compared</th></tr>{rows}</table>"
    ]


def _model_plots(plots: dict, lat: dict) -> list[str]:
    figures = []
    if plots.get("confusion_matrix"):
        cm = plots["confusion_matrix"]
        figures.append(confusion_matrix_svg(cm["labels"], cm["matrix"]))
    if plots.get("latency_histogram"):
        lh = plots["latency_histogram"]
        markers = {
            "p50": lat.get("p50_ms"),
            "p95": lat.get("p95_ms"),
            "p99": lat.get("p99_ms"),
            "limit p99": lat.get("max_p99_ms"),
        }
        figures.append(latency_svg(lh["edges_ms"], lh["counts"], markers))
    return ['<h2>Plots</h2><div class="plots">' + "".join(figures) + "</div>"] if figures else []


def _model_sections(evidence: dict) -> list[str]:
    lat = evidence.get("latency") or {}
    return [
        *_quality_section(evidence),
        *_latency_section(lat),
        *_fairness_section(evidence.get("fairness") or {}),
        *_model_plots(evidence.get("plots") or {}, lat),
    ]


def _data_sections(evidence: dict) -> list[str]:
    data = evidence.get("data") or {}
    out = [
        f"<p>Rows: {_e(data.get('rows'))} current vs {_e(data.get('reference_rows'))} reference. "
        f"Drift detected: <b>{'yes' if evidence.get('drift_detected') else 'no'}</b>.</p>"
    ]
    features = data.get("features") or {}
    if features:
        keys = ("psi", "ks_statistic", "ks_p_value", "mean_shift_sigma", "cramers_v", "unseen_fraction")
        head = "".join(f"<th>{k}</th>" for k in keys)
        rows = "".join(
            f"<tr><td><code>{escape(name)}</code></td><td>{escape(str(row.get('kind')))}</td>"
            + "".join(f"<td>{_e(row[k]) if k in row else '—'}</td>" for k in keys)
            + f"<td>{'<b class=adv>yes</b>' if row.get('drifted') else 'no'}</td></tr>"
            for name, row in features.items()
        )
        out.append(
            f"<h2>Drift by feature</h2><table><tr><th>feature</th><th>kind</th>{head}"
            f"<th>drifted</th></tr>{rows}</table>"
        )
    hists = (evidence.get("plots") or {}).get("histograms") or []
    if hists:
        out.append(
            '<h2>Drifted features: reference vs current</h2><div class="plots">'
            + "".join(histogram_svg(h) for h in hists)
            + "</div>"
        )
    return out


def _findings(summary: Summary) -> list[str]:
    parts: list[str] = []
    if summary.failures:
        fixes = "".join(
            f"<li>To proceed: {escape(f)}</li>" for f in dict.fromkeys(map(fix_for, summary.failures))
        )
        parts += [
            f"<h2>Blocking failures ({len(summary.failures)})</h2>",
            _checks_table(summary.failures),
            f"<ul>{fixes}</ul>",
        ]
    if summary.inconclusive:
        parts += [
            f"<h2>Inconclusive ({len(summary.inconclusive)}): they block, without blaming the candidate</h2>",
            _checks_table(summary.inconclusive),
        ]
    if summary.advisories:
        parts += [
            f"<h2>Advisory findings ({len(summary.advisories)}): they do not block</h2>",
            _checks_table(summary.advisories),
        ]
    return parts


def to_html(evidence: dict) -> str:
    summary = summarize(evidence)
    subject = evidence["subject"]
    title = f"{evidence['kind'].capitalize()} gate {summary.word}"
    if subject.get("model"):
        title += f" — {subject['model']}" + (f" v{subject['version']}" if subject.get("version") else "")
    banner = "pass" if summary.passed else "fail"
    parts = [
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="banner verdict-{banner}">{escape(evidence["summary"])}</p>',
        f'<p class="counts">{escape(summary.counts_line())}</p>',
        "<h2>Subject</h2>",
        _subject(evidence),
        *_findings(summary),
    ]
    parts += _model_sections(evidence) if evidence["kind"] == "model" else _data_sections(evidence)
    if evidence.get("notes"):
        parts.append(
            "<h2>Notes</h2><ul>" + "".join(f"<li>{escape(n)}</li>" for n in evidence["notes"]) + "</ul>"
        )
    parts += [
        f"<h2>All {len(evidence['checks'])} checks</h2>",
        _checks_table(evidence["checks"]),
        f"<p><small>Evidence schema {escape(evidence['schema_version'])}. An observed value equal to "
        "its threshold passes.</small></p></body></html>",
    ]
    return "\n".join(parts)
