"""Small hand-written SVG charts for the HTML report.

Hand-written rather than matplotlib: the report must be self-contained and deterministic, three
chart types are a few dozen lines, and the gate should not import a plotting stack to run.
"""

from __future__ import annotations

import itertools
from html import escape

from gates.checks.result import fmt

REF_COLOUR = "#4C78A8"
CUR_COLOUR = "#F58518"
WIDTH, HEIGHT, PAD = 520, 220, 36


def _frame(body: list[str], title: str, height: int = HEIGHT) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<text x="{PAD}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>'
        + "".join(body)
        + "</svg>"
    )


def paired_bars(title: str, labels: list[str], reference: list[float], current: list[float]) -> str:
    """Reference vs current shares per bin/category, side by side."""
    n = max(len(reference), 1)
    top = max([*reference, *current, 1e-12])
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD - 10
    slot = plot_w / n
    body = [
        f'<line x1="{PAD}" y1="{PAD + plot_h}" x2="{PAD + plot_w}" y2="{PAD + plot_h}" stroke="#333"/>',
        f'<rect x="{WIDTH - 170}" y="6" width="10" height="10" fill="{REF_COLOUR}"/>'
        f'<text x="{WIDTH - 156}" y="15" font-size="11">reference</text>'
        f'<rect x="{WIDTH - 90}" y="6" width="10" height="10" fill="{CUR_COLOUR}"/>'
        f'<text x="{WIDTH - 76}" y="15" font-size="11">current</text>',
        f'<text x="4" y="{PAD + 8}" font-size="10">{escape(fmt(top))}</text>',
    ]
    for i, (r, c) in enumerate(zip(reference, current, strict=True)):
        x = PAD + i * slot
        for j, (value, colour) in enumerate(((r, REF_COLOUR), (c, CUR_COLOUR))):
            h = plot_h * value / top
            body.append(
                f'<rect x="{x + j * slot / 2:.1f}" y="{PAD + plot_h - h:.1f}" '
                f'width="{max(slot / 2 - 1, 0.5):.1f}" '
                f'height="{h:.1f}" fill="{colour}"><title>{escape(labels[i] if i < len(labels) else "")}: '
                f"{'reference' if j == 0 else 'current'} {fmt(value)}</title></rect>"
            )
    if labels:
        body.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{escape(labels[0])}</text>')
        body.append(
            f'<text x="{PAD + plot_w}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">'
            f"{escape(labels[-1])}</text>"
        )
    return _frame(body, title)


def histogram_svg(hist: dict) -> str:
    if hist["kind"] == "numeric":
        edges = hist["edges"]
        labels = [f"{fmt(a)} to {fmt(b)}" for a, b in itertools.pairwise(edges)]
    else:
        labels = hist["categories"]
    return paired_bars(f"{hist['feature']}: reference vs current", labels, hist["reference"], hist["current"])


def confusion_matrix_svg(labels: list[str], matrix: list[list[int]]) -> str:
    total = max(sum(sum(row) for row in matrix), 1)
    cell, x0, y0 = 80, 150, 50
    body = [
        f'<text x="{x0 + cell}" y="{y0 - 18}" font-size="11" text-anchor="middle">predicted</text>',
        f'<text x="20" y="{y0 + cell}" font-size="11">actual</text>',
    ]
    for j, label in enumerate(labels):
        body.append(
            f'<text x="{x0 + j * cell + cell / 2}" y="{y0 - 4}" font-size="11" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    for i, row in enumerate(matrix):
        body.append(
            f'<text x="{x0 - 6}" y="{y0 + i * cell + cell / 2 + 4}" font-size="11" '
            f'text-anchor="end">{escape(labels[i])}</text>'
        )
        for j, value in enumerate(row):
            shade = 0.15 + 0.85 * value / total
            body.append(
                f'<rect x="{x0 + j * cell}" y="{y0 + i * cell}" width="{cell}" height="{cell}" '
                f'fill="{REF_COLOUR}" fill-opacity="{shade:.2f}" stroke="#fff"/>'
                f'<text x="{x0 + j * cell + cell / 2}" y="{y0 + i * cell + cell / 2 + 5}" font-size="14" '
                f'text-anchor="middle">{value}</text>'
            )
    return _frame(body, "Confusion matrix (holdout)", height=y0 + 2 * cell + 10)


def latency_svg(edges: list[float], counts: list[int], markers: dict[str, float]) -> str:
    """Request latency histogram with vertical lines for percentiles and the p99 limit."""
    top = max([*counts, 1])
    lo, hi = edges[0], max(edges[-1], *[v for v in markers.values() if v is not None], edges[0] + 1e-9)
    plot_w, plot_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD - 10

    def x_of(v: float) -> float:
        return PAD + plot_w * (v - lo) / (hi - lo)

    body = [f'<line x1="{PAD}" y1="{PAD + plot_h}" x2="{PAD + plot_w}" y2="{PAD + plot_h}" stroke="#333"/>']
    for a, b, count in zip(edges[:-1], edges[1:], counts, strict=True):
        h = plot_h * count / top
        body.append(
            f'<rect x="{x_of(a):.1f}" y="{PAD + plot_h - h:.1f}" '
            f'width="{max(x_of(b) - x_of(a) - 1, 0.5):.1f}" '
            f'height="{h:.1f}" fill="{REF_COLOUR}"><title>{fmt(a)} to {fmt(b)} ms: {count}</title></rect>'
        )
    for k, (name, value) in enumerate(markers.items()):
        if value is None:
            continue
        colour = "#C00" if name.startswith("limit") else "#333"
        # Labels in the right half sit left of their line, so the limit (often at the edge) stays readable.
        right_half = x_of(value) > PAD + plot_w / 2
        label_x, anchor = (x_of(value) - 3, "end") if right_half else (x_of(value) + 3, "start")
        body.append(
            f'<line x1="{x_of(value):.1f}" y1="{PAD}" x2="{x_of(value):.1f}" y2="{PAD + plot_h}" '
            f'stroke="{colour}" stroke-dasharray="4 3"/>'
            f'<text x="{label_x:.1f}" y="{PAD + 10 + 12 * k}" font-size="10" fill="{colour}" '
            f'text-anchor="{anchor}">{escape(name)} {fmt(value)} ms</text>'
        )
    body.append(f'<text x="{PAD}" y="{HEIGHT - 8}" font-size="10">{fmt(lo)} ms</text>')
    body.append(
        f'<text x="{PAD + plot_w}" y="{HEIGHT - 8}" font-size="10" text-anchor="end">{fmt(hi)} ms</text>'
    )
    return _frame(body, "Request latency (ms)")
