"""Self-contained HTML report with hand-written inline SVG charts (no CDN, no JavaScript)."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

PALETTE = ["#2563eb", "#f97316", "#16a34a", "#dc2626", "#7c3aed", "#0891b2", "#ca8a04"]


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _nice_max(value: float) -> float:
    if value <= 0 or not math.isfinite(value):
        return 1.0
    exp: float = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * exp:
            return step * exp
    return 10 * exp


def render_bar_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    width: int = 640,
    height: int = 300,
    y_format: str = "{:,.2f}",
) -> str:
    """Return an SVG grouped bar chart."""
    left, right, top, bottom = 60, 10, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    vmax = _nice_max(max((float(v) for vals in series.values() for v in vals), default=1.0))
    n, k = max(len(labels), 1), max(len(series), 1)
    group_w = plot_w / n
    bar_w = group_w * 0.8 / k
    parts = [_svg_open(width, height, title), _axis(left, top, plot_w, plot_h, vmax, y_format)]
    for j, (name, vals) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        for i, v in enumerate(vals):
            v = float(v) if v is not None and math.isfinite(float(v)) else 0.0
            h = plot_h * v / vmax
            x = left + i * group_w + group_w * 0.1 + j * bar_w
            parts.append(
                f'<rect x="{x:.1f}" y="{top + plot_h - h:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                f'fill="{color}"><title>{_esc(name)} {_esc(labels[i])}: {y_format.format(v)}</title></rect>'
            )
    for i, lab in enumerate(labels):
        x = left + (i + 0.5) * group_w
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="11" text-anchor="middle">{_esc(lab)}</text>'
        )
    parts.append(_legend(list(series), left, height - 14))
    parts.append("</svg>")
    return "".join(parts)


def render_hbar_chart(
    title: str, labels: Sequence[str], values: Sequence[float], *, width: int = 640
) -> str:
    """Return an SVG horizontal bar chart (for category counts)."""
    row_h, left, right, top = 22, 190, 70, 30
    height = top + row_h * max(len(labels), 1) + 10
    vmax = max((float(v) for v in values), default=1.0) or 1.0
    plot_w = width - left - right
    parts = [_svg_open(width, height, title)]
    for i, (lab, v) in enumerate(zip(labels, values, strict=True)):
        y = top + i * row_h
        w = plot_w * float(v) / vmax
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="12" text-anchor="end">{_esc(lab)}</text>'
            f'<rect x="{left}" y="{y + 3}" width="{w:.1f}" height="{row_h - 6}" fill="{PALETTE[0]}"/>'
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="11">{float(v):,.0f}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def render_line_chart(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    *,
    width: int = 640,
    height: int = 280,
    y_format: str = "{:,.2f}",
    y_max: float | None = None,
) -> str:
    """Return an SVG line chart with one polyline per series."""
    left, right, top, bottom = 60, 10, 30, 50
    plot_w, plot_h = width - left - right, height - top - bottom
    finite = [
        float(v)
        for vals in series.values()
        for v in vals
        if v is not None and math.isfinite(float(v))
    ]
    vmax = y_max if y_max is not None else _nice_max(max(finite, default=1.0))
    n = max(len(labels), 2)
    parts = [_svg_open(width, height, title), _axis(left, top, plot_w, plot_h, vmax, y_format)]
    for j, (name, vals) in enumerate(series.items()):
        color = PALETTE[j % len(PALETTE)]
        pts = []
        for i, v in enumerate(vals):
            if v is None or not math.isfinite(float(v)):
                continue
            x = left + plot_w * i / (n - 1)
            y = top + plot_h - plot_h * float(v) / vmax
            pts.append(f"{x:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.5" fill="{color}"><title>{_esc(name)} '
                f"{_esc(labels[i])}: {y_format.format(float(v))}</title></circle>"
            )
        parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{color}" stroke-width="2"/>'
        )
    step = max(1, len(labels) // 12)
    for i in range(0, len(labels), step):
        x = left + plot_w * i / (n - 1)
        parts.append(
            f'<text x="{x:.1f}" y="{top + plot_h + 16}" font-size="10" text-anchor="middle">{_esc(labels[i])}</text>'
        )
    parts.append(_legend(list(series), left, height - 14))
    parts.append("</svg>")
    return "".join(parts)


def render_heatmap(
    title: str, rows: Sequence[str], cols: Sequence[str], values: list[list[float]]
) -> str:
    """Return an SVG heatmap of shares in [0, 1] (cohort retention)."""
    cell, left, top = 34, 80, 40
    width = left + cell * max(len(cols), 1) + 10
    height = top + 20 * max(len(rows), 1) + 10
    parts = [_svg_open(width, height, title)]
    for j, c in enumerate(cols):
        parts.append(
            f'<text x="{left + j * cell + cell / 2:.1f}" y="{top - 6}" font-size="10" text-anchor="middle">{_esc(c)}</text>'
        )
    for i, r in enumerate(rows):
        y = top + i * 20
        parts.append(
            f'<text x="{left - 6}" y="{y + 14}" font-size="11" text-anchor="end">{_esc(r)}</text>'
        )
        for j, v in enumerate(values[i]):
            v = float(v) if v is not None and math.isfinite(float(v)) else 0.0
            # Square-root scale so small later-month retention is still visible next to 100% at month 0.
            shade = int(255 - 200 * math.sqrt(max(0.0, min(1.0, v))))
            fill = f"rgb({shade},{shade},255)"
            color = "#fff" if shade < 120 else "#111"
            parts.append(
                f'<rect x="{left + j * cell}" y="{y}" width="{cell - 1}" height="19" fill="{fill}"/>'
                f'<text x="{left + j * cell + cell / 2:.1f}" y="{y + 13}" font-size="9" '
                f'text-anchor="middle" fill="{color}">{v * 100:.0f}%</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _svg_open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="{_esc(title)}" '
        f'font-family="system-ui, sans-serif"><title>{_esc(title)}</title>'
        f'<text x="8" y="18" font-size="13" font-weight="600">{_esc(title)}</text>'
    )


def _axis(left: int, top: int, plot_w: int, plot_h: int, vmax: float, y_format: str) -> str:
    parts = []
    for k in range(5):
        v = vmax * k / 4
        y = top + plot_h - plot_h * k / 4
        parts.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + plot_w}" y2="{y:.1f}" stroke="#e5e7eb"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{_esc(y_format.format(v))}</text>'
        )
    parts.append(
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#9ca3af"/>'
    )
    return "".join(parts)


def _legend(names: list[str], x: int, y: int) -> str:
    parts = []
    for j, name in enumerate(names):
        xx = x + j * 170
        parts.append(
            f'<rect x="{xx}" y="{y - 9}" width="10" height="10" fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{xx + 14}" y="{y}" font-size="11">{_esc(name)}</text>'
        )
    return "".join(parts)


def render_table(df: pd.DataFrame, *, float_format: str = "{:,.3f}", max_rows: int = 50) -> str:
    """Return an HTML table of a small DataFrame."""
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    body = []
    for _, row in df.head(max_rows).iterrows():
        cells = []
        for v in row:
            if isinstance(v, float):
                cells.append(f"<td>{float_format.format(v) if math.isfinite(v) else ''}</td>")
            else:
                cells.append(f"<td>{_esc(v)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI","PingFang SC","Microsoft YaHei",sans-serif;
margin:2rem auto;max-width:1100px;color:#111;padding:0 1rem}
h1{font-size:1.6rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd;padding-bottom:.3rem}
table{border-collapse:collapse;font-size:.85rem;margin:.5rem 0}
td,th{border:1px solid #ddd;padding:.25rem .5rem;text-align:right}th{background:#f3f4f6}
.note{color:#92400e;background:#fffbeb;padding:.5rem;border-radius:4px}
.grid{display:flex;flex-wrap:wrap;gap:1rem}figure{margin:0}
"""


def render_report(sections: list[tuple[str, str]], *, title: str, notes: Sequence[str] = ()) -> str:
    """Return the full HTML document from (heading, html body) sections."""
    note_html = "".join(f'<p class="note">{_esc(n)}</p>' for n in notes)
    body = "".join(f"<section><h2>{_esc(h)}</h2>{content}</section>" for h, content in sections)
    return (
        '<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f"<body><h1>{_esc(title)}</h1>{note_html}{body}</body></html>"
    )
