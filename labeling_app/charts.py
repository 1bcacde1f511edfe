"""Server-rendered SVG charts for the lead pages: no chart library, no script, no inline style.

Each function returns SVG markup (escaped, marked safe) sized by its viewBox, so it scales with
the page. Colours come from CSS classes in lead.css; geometry is in SVG attributes, which a
strict Content-Security-Policy allows (they are not style).
"""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

WIDTH = 640


def _svg(height: float, body: str, label: str, width: float = WIDTH) -> SafeString:
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">'
        "<title>{}</title>{}</svg>", f"{width:.0f}", f"{height:.0f}", label, label, mark_safe(body))


def _num(value: float) -> str:
    return f"{value:.1f}"


def interval_chart(rows: list[dict], label: str, low: float, high: float, reference: float | None = None,
                   fmt: str = "{:.2f}") -> SafeString:
    """Horizontal point estimates with error bars: rows of {"label", "value", "low", "high"}.

    ``low``..``high`` is the axis; ``reference`` draws a dashed line (0.5 for a coin flip)."""
    row_height, left, right = 30, 190, 70
    height = row_height * max(len(rows), 1) + 30
    span = (high - low) or 1.0

    def x(value: float) -> float:
        return left + (min(max(value, low), high) - low) / span * (WIDTH - left - right)

    parts = []
    for tick in (low, (low + high) / 2, high):
        parts.append(format_html('<line class="grid" x1="{}" y1="5" x2="{}" y2="{}"/>'
                                 '<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                                 _num(x(tick)), _num(x(tick)), height - 22, _num(x(tick)), height - 6, fmt.format(tick)))
    if reference is not None:
        parts.append(format_html('<line class="reference" x1="{}" y1="5" x2="{}" y2="{}"/>',
                                 _num(x(reference)), _num(x(reference)), height - 22))
    for i, row in enumerate(rows):
        y = 20 + i * row_height
        parts.append(format_html('<text class="label" x="{}" y="{}" text-anchor="end">{}</text>', left - 8, y + 4, row["label"]))
        if row.get("value") is None:
            parts.append(format_html('<text class="tick" x="{}" y="{}">no data</text>', left + 4, y + 4))
            continue
        if row.get("low") is not None:
            parts.append(format_html('<line class="interval" x1="{}" y1="{}" x2="{}" y2="{}"/>',
                                     _num(x(row["low"])), y, _num(x(row["high"])), y))
            for end in (row["low"], row["high"]):
                parts.append(format_html('<line class="interval" x1="{}" y1="{}" x2="{}" y2="{}"/>',
                                         _num(x(end)), y - 6, _num(x(end)), y + 6))
        parts.append(format_html('<circle class="point" cx="{}" cy="{}" r="5"/>', _num(x(row["value"])), y))
        parts.append(format_html('<text class="value" x="{}" y="{}">{}</text>', WIDTH - right + 8, y + 4,
                                 fmt.format(row["value"])))
    return _svg(height, "".join(parts), label)


def bar_chart(points: list[tuple[str, float]], label: str, fmt: str = "{:.0f}") -> SafeString:
    """Vertical bars, one per (label, value), e.g. comparisons per day."""
    height, bottom, top = 180, 30, 16
    peak = max((v for _, v in points), default=0) or 1
    slot = (WIDTH - 20) / max(len(points), 1)
    every = max(1, len(points) // 10)  # at most ~10 axis labels
    parts = []
    for i, (name, value) in enumerate(points):
        bar = (height - bottom - top) * value / peak
        x = 10 + i * slot
        parts.append(format_html('<rect class="bar" x="{}" y="{}" width="{}" height="{}"><title>{}: {}</title></rect>',
                                 _num(x + slot * 0.1), _num(height - bottom - bar), _num(slot * 0.8), _num(bar), name, fmt.format(value)))
        if i % every == 0:
            parts.append(format_html('<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>',
                                     _num(x + slot / 2), height - 12, name))
    parts.append(format_html('<text class="tick" x="10" y="12">max {}</text>', fmt.format(peak)))
    return _svg(height, "".join(parts), label)


def line_chart(points: list[tuple[str, float | None]], label: str, low: float = -1.0, high: float = 1.0) -> SafeString:
    """A polyline over (label, value) points on a fixed axis; missing values break the line."""
    height, bottom, top, left = 180, 30, 12, 40
    span = high - low
    slot = (WIDTH - left - 10) / max(len(points) - 1, 1)

    def y(value: float) -> float:
        return top + (high - min(max(value, low), high)) / span * (height - bottom - top)

    parts = [format_html('<line class="grid" x1="{}" y1="{}" x2="{}" y2="{}"/><text class="tick" x="4" y="{}">{}</text>',
                         left, _num(y(v)), WIDTH - 10, _num(y(v)), _num(y(v) + 4), f"{v:g}")
             for v in (low, (low + high) / 2, high)]
    segment: list[str] = []
    segments = [segment]
    for i, (name, value) in enumerate(points):
        x = left + i * slot
        if value is None:
            segment = []
            segments.append(segment)
            continue
        segment.append(f"{_num(x)},{_num(y(value))}")
        parts.append(format_html('<circle class="point" cx="{}" cy="{}" r="3"><title>{}: {}</title></circle>',
                                 _num(x), _num(y(value)), name, f"{value:.3f}"))
        parts.append(format_html('<text class="tick" x="{}" y="{}" text-anchor="middle">{}</text>', _num(x), height - 12, name))
    parts.extend(format_html('<polyline class="line" points="{}"/>', " ".join(s)) for s in segments if len(s) > 1)
    return _svg(height, "".join(parts), label)


def matrix_chart(names: list[str], cells: dict[tuple[int, int], dict], label: str) -> SafeString:
    """A win-rate matrix: cell (row, column) is the row variant's win rate against the column's,
    shaded by rate (CSS classes rate-0 .. rate-10); empty where the pair was never compared."""
    size, left, top = 64, 170, 110
    width = left + size * len(names) + 10
    height = top + size * len(names) + 10
    parts = []
    for j, name in enumerate(names):
        parts.append(format_html('<text class="label" transform="translate({} {}) rotate(-40)">{}</text>',
                                 left + j * size + size / 2, top - 8, name))
    for i, name in enumerate(names):
        parts.append(format_html('<text class="label" x="{}" y="{}" text-anchor="end">{}</text>',
                                 left - 8, top + i * size + size / 2 + 4, name))
        for j in range(len(names)):
            cell = cells.get((i, j))
            x, y = left + j * size, top + i * size
            if cell is None or cell.get("rate") is None:
                parts.append(format_html('<rect class="cell empty" x="{}" y="{}" width="{}" height="{}"/>', x, y, size - 2, size - 2))
                continue
            shade = round(cell["rate"] * 10)
            parts.append(format_html(
                '<rect class="cell rate-{}" x="{}" y="{}" width="{}" height="{}"><title>{} vs {}: {} [{}, {}], n={}</title></rect>'
                '<text class="cell-text" x="{}" y="{}" text-anchor="middle">{}</text>',
                shade, x, y, size - 2, size - 2, name, names[j], f"{cell['rate']:.3f}", f"{cell['low']:.3f}",
                f"{cell['high']:.3f}", cell["n"],
                x + size / 2 - 1, y + size / 2 + 4, f"{cell['rate']:.2f}"))
    return _svg(height, "".join(parts), label, width=width)

