"""Bar charts drawn on the server as SVG: no script, no style attribute (the CSP allows neither), classes only."""

from __future__ import annotations

from markupsafe import Markup, escape

from edge.core.spans import when

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 960, 220, 48, 28, 10


def bars(buckets: list, bucket_ms: int, label_fmt: str = "%m-%d %H:%M", gaps: list | None = None) -> Markup:
    """One bar per bucket (its `events`), shaded spans where the checkpoint was not covered, axis labels in UTC."""
    if not buckets:
        return Markup('<p class="empty">No hours in this period.</p>')
    start, end = buckets[0].start_ms, buckets[-1].start_ms + bucket_ms
    most = max(max(b.events for b in buckets), 1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - TOP
    step = plot_w / len(buckets)

    def x(ms: int) -> float:
        return LEFT + (min(max(ms, start), end) - start) * plot_w / max(end - start, 1)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="events per bucket">'
    ]
    for gap in gaps or []:
        x0, x1 = x(gap.from_ms), x(gap.to_ms if gap.to_ms is not None else end)
        parts.append(
            f'<rect class="gap gap-{escape(gap.kind)}" x="{x0:.1f}" y="{TOP}" width="{max(x1 - x0, 3):.1f}" '
            f'height="{plot_h}"><title>{escape(gap.kind)}: {escape(when(gap.from_ms))} – '
            f"{escape(when(gap.to_ms))}</title></rect>"
        )
    for i, b in enumerate(buckets):
        h = plot_h * b.events / most
        parts.append(
            f'<rect class="bar" x="{LEFT + i * step + 0.5:.1f}" y="{TOP + plot_h - h:.1f}" '
            f'width="{max(step - 1, 0.5):.1f}" height="{h:.1f}"><title>{escape(when(b.start_ms, label_fmt))}: '
            f"{b.events} event(s), {b.persons} person(s), {b.faces} face(s)</title></rect>"
        )
    parts.append(f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH - 8}" y2="{TOP + plot_h}"/>')
    parts.append(f'<text class="tick" x="{LEFT - 6}" y="{TOP + 10}" text-anchor="end">{most}</text>')
    parts.append(f'<text class="tick" x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">0</text>')
    every = max(len(buckets) // 6, 1)
    for i in range(0, len(buckets), every):
        if LEFT + i * step > WIDTH - 70:  # a label that would run off the chart's right edge
            break
        parts.append(
            f'<text class="tick" x="{LEFT + i * step:.1f}" y="{HEIGHT - 8}">'
            f"{escape(when(buckets[i].start_ms, label_fmt))}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))
