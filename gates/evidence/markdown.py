"""Evidence as Markdown: the body of a promotion pull request, written for the human approver.

Order follows what an approver needs: the verdict and what was tested (identities), then what
failed, then the headline figures, then every check folded away for the curious.
"""

from __future__ import annotations

from gates.checks.result import fmt


def _cell(value: object) -> str:
    text = fmt(value) if not isinstance(value, (list, dict)) else _compact(value)
    return text.replace("|", "\\|").replace("\n", " ").replace("\r", " ")


def _compact(value: object) -> str:
    if isinstance(value, list):
        return ", ".join(fmt(v) for v in value) if len(value) <= 8 else f"[{len(value)} items]"
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in list(value.items())[:6])
    return fmt(value)


def _code(value: object) -> str:
    if value in (None, ""):
        return "—"
    return f"`{str(value).replace('`', '')}`"


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


def _check_table(checks: list[dict]) -> list[str]:
    lines = ["| Check | Result | Observed | Threshold | Reason |", "|---|---|---|---|---|"]
    for c in checks:
        if c["skipped"]:
            result = "skipped"
        elif c["passed"]:
            result = "pass"
        else:
            result = "**FAIL**" if c["blocking"] else "advisory"
        threshold = "—" if c["threshold"] is None else f"{c['comparator']} {_cell(c['threshold'])}"
        observed = "—" if c["observed"] is None else _cell(c["observed"])
        lines.append(f"| `{c['name']}` | {result} | {observed} | {threshold} | {_cell(c['reason'])} |")
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
            f"### Fairness: true-positive rate by `{fair.get('attribute')}`",
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
        + (f" ({', '.join(evidence['drifted_features'])})" if evidence.get("drifted_features") else "")
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
                f"| `{name}` | {row.get('kind')} | {fmt(row.get('psi')) if 'psi' in row else '—'} | "
                f"{fmt(row.get('ks_statistic')) if 'ks_statistic' in row else '—'} | "
                f"{fmt(row.get('mean_shift_sigma')) if 'mean_shift_sigma' in row else '—'} | "
                f"{fmt(row.get('cramers_v')) if 'cramers_v' in row else '—'} | "
                f"{fmt(row.get('unseen_fraction')) if 'unseen_fraction' in row else '—'} | "
                f"{'**yes**' if row.get('drifted') else 'no'} |"
            )
        out.append("")
    return out


def to_markdown(evidence: dict) -> str:
    verdict = "PASSED" if evidence["passed"] else "FAILED"
    subject = evidence["subject"]
    title = f"## {evidence['kind'].capitalize()} gate {verdict}"
    if subject.get("model"):
        title += f" — {subject['model']}" + (f" v{subject['version']}" if subject.get("version") else "")
    lines = [title, "", f"> {evidence['summary']}", "", *_subject_rows(evidence), ""]
    failures = [c for c in evidence["checks"] if not c["passed"] and c["blocking"]]
    advisory = [c for c in evidence["checks"] if not c["passed"] and not c["blocking"]]
    if failures:
        lines += ["### Failed checks", "", *_check_table(failures), ""]
    if advisory:
        lines += ["### Advisory findings (do not block)", "", *_check_table(advisory), ""]
    lines += _model_figures(evidence) if evidence["kind"] == "model" else _data_figures(evidence)
    if evidence.get("notes"):
        lines += ["### Notes", "", *[f"- {_cell(n)}" for n in evidence["notes"]], ""]
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
