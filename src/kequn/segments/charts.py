"""Inline SVG charts for the back office (no JavaScript, no CDN; no Django imports)."""

from __future__ import annotations

from datetime import datetime
from html import escape


def render_size_chart(
    points: list[tuple[datetime, int]], width: int = 640, height: int = 180
) -> str:
    """Return an SVG line chart of segment size over time."""
    if not points:
        return ""
    pad_l, pad_r, pad_t, pad_b = 48, 12, 12, 28
    plot_w, plot_h = width - pad_l - pad_r, height - pad_t - pad_b
    sizes = [s for _t, s in points]
    top = max(max(sizes), 1)
    t0, t1 = points[0][0].timestamp(), points[-1][0].timestamp()
    span = max(t1 - t0, 1.0)

    def xy(t: datetime, s: int) -> tuple[float, float]:
        x = pad_l + (plot_w * (t.timestamp() - t0) / span if len(points) > 1 else plot_w / 2)
        return x, pad_t + plot_h * (1 - s / top)

    coords = [xy(t, s) for t, s in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
    dots = "".join(
        f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3"><title>{escape(f"{t:%Y-%m-%d %H:%M}: {s:,}")}</title></circle>'
        for (x, y), (t, s) in zip(coords, points, strict=True)
    )
    base = pad_t + plot_h
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" class="kequn-size-chart" style="max-width:{width}px">'
        f'<line x1="{pad_l}" y1="{base}" x2="{width - pad_r}" y2="{base}" stroke="#9ca3af"/>'
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{base}" stroke="#9ca3af"/>'
        f'<text x="{pad_l - 6}" y="{pad_t + 4}" font-size="11" text-anchor="end" fill="#6b7280">{top:,}</text>'
        f'<text x="{pad_l - 6}" y="{base}" font-size="11" text-anchor="end" fill="#6b7280">0</text>'
        f'<text x="{pad_l}" y="{height - 8}" font-size="11" fill="#6b7280">{points[0][0]:%Y-%m-%d}</text>'
        f'<text x="{width - pad_r}" y="{height - 8}" font-size="11" text-anchor="end" fill="#6b7280">{points[-1][0]:%Y-%m-%d}</text>'
        f'<polyline points="{line}" fill="none" stroke="#7c3aed" stroke-width="2"/>'
        f'<g fill="#7c3aed">{dots}</g></svg>'
    )
