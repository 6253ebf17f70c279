"""Charts of the dashboard as inline SVG, drawn on the server: no chart library, nothing to download.

Only numbers go into the markup, so it is safe to mark it as such for the templates.
"""

from __future__ import annotations

from collections.abc import Sequence

from markupsafe import Markup

WIDTH = 600
HEIGHT = 120
PAD = 4


def _scale(values: Sequence[float]) -> float:
    top = max(values, default=0.0)
    return top if top > 0 else 1.0


def sparkline(values: Sequence[float], label: str, unit: str = "", ceiling: float | None = None) -> Markup:
    """A line chart of values (oldest first) filling the chart's width, with its label and latest value."""
    top = ceiling if ceiling else _scale(values)
    if len(values) < 2:
        path = ""
    else:
        step = (WIDTH - 2 * PAD) / (len(values) - 1)
        points = [(PAD + i * step, HEIGHT - PAD - (HEIGHT - 2 * PAD) * min(v, top) / top) for i, v in enumerate(values)]
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        area = f"{PAD},{HEIGHT - PAD} {line} {points[-1][0]:.1f},{HEIGHT - PAD}"
        path = f'<polygon class="area" points="{area}"/><polyline class="line" points="{line}"/>'
    latest = f"{values[-1]:.1f}{unit}" if values else "no data yet"
    return Markup(
        f'<figure class="chart"><figcaption><span>{Markup.escape(label)}</span><b>{Markup.escape(latest)}</b>'
        f'</figcaption><svg viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="{Markup.escape(label)}"><line class="grid" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" '
        f'y2="{HEIGHT - PAD}"/>{path}</svg><small>max {top:.1f}{Markup.escape(unit)} · last hour</small></figure>')


def bars(values: Sequence[float], label: str) -> Markup:
    """A bar chart (calls per interval), oldest first."""
    top = _scale(values)
    n = max(len(values), 1)
    width = (WIDTH - 2 * PAD) / n
    rects = "".join(
        f'<rect x="{PAD + i * width:.1f}" y="{HEIGHT - PAD - (HEIGHT - 2 * PAD) * v / top:.1f}" '
        f'width="{max(width - 1, 1):.1f}" height="{(HEIGHT - 2 * PAD) * v / top:.1f}"/>'
        for i, v in enumerate(values) if v > 0)
    total = f"{sum(values):.0f}"
    return Markup(
        f'<figure class="chart"><figcaption><span>{Markup.escape(label)}</span><b>{total}</b></figcaption>'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="{Markup.escape(label)}"><line class="grid" x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" '
        f'y2="{HEIGHT - PAD}"/><g class="bars">{rects}</g></svg><small>max {top:.0f} per 10 s · last hour</small>'
        '</figure>')
