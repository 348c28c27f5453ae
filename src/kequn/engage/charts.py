"""Inline SVG charts of a campaign report (no JavaScript, no CDN; no Django imports)."""

from __future__ import annotations

from html import escape

COLOURS = ("#7c3aed", "#9ca3af", "#f59e0b", "#ef4444", "#10b981", "#3b82f6")


def render_bars(rows: list[tuple[str, float]], width: int = 560, bar: int = 22) -> str:
    """Return a horizontal bar chart of labelled counts."""
    if not rows:
        return ""
    label_w, pad = 200, 8
    top = max(max(value for _, value in rows), 1)
    height = pad * 2 + len(rows) * (bar + 6)
    parts = []
    for index, (label, value) in enumerate(rows):
        y = pad + index * (bar + 6)
        length = (width - label_w - 70) * value / top
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar * 0.7:.1f}" font-size="12" text-anchor="end" '
            f'fill="#6b7280">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}">'
            f"<title>{escape(label)}: {value:,.0f}</title></rect>"
            f'<text x="{label_w + length + 6:.1f}" y="{y + bar * 0.7:.1f}" font-size="12" '
            f'fill="#374151">{value:,.0f}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" class="kequn-bars" style="max-width:{width}px">{"".join(parts)}</svg>'
    )


def render_rates(
    rows: list[tuple[str, float, float | None, float | None]], width: int = 560
) -> str:
    """Return bars of rates (0..1) with their confidence interval as whiskers."""
    if not rows:
        return ""
    label_w, pad, bar = 200, 8, 26
    top = max(max((high or rate) for _, rate, _, high in rows), 1e-9)
    scale = (width - label_w - 80) / top
    height = pad * 2 + len(rows) * (bar + 10)
    parts = []
    for index, (label, rate, low, high) in enumerate(rows):
        y = pad + index * (bar + 10)
        colour = COLOURS[index % len(COLOURS)]
        parts.append(
            f'<text x="{label_w - 8}" y="{y + bar * 0.7:.1f}" font-size="12" text-anchor="end" '
            f'fill="#6b7280">{escape(label)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{rate * scale:.1f}" height="{bar}" fill="{colour}">'
            f"<title>{escape(label)}: {rate:.2%}</title></rect>"
        )
        if low is not None and high is not None:
            mid = y + bar / 2
            parts.append(
                f'<line x1="{label_w + low * scale:.1f}" y1="{mid}" x2="{label_w + high * scale:.1f}" '
                f'y2="{mid}" stroke="#111827" stroke-width="1.5"/>'
            )
        parts.append(
            f'<text x="{label_w + max(rate, high or 0) * scale + 6:.1f}" y="{y + bar * 0.7:.1f}" '
            f'font-size="12" fill="#374151">{rate:.2%}</text>'
        )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" class="kequn-rates" style="max-width:{width}px">{"".join(parts)}</svg>'
    )
