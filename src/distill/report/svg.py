"""A dependency-free inline SVG line chart, so the report page needs no script or network.

Written by hand because plotting libraries either pull in a browser runtime (plotly,
bokeh) or a heavy install for one chart (matplotlib); we need axes and a few polylines.
"""

from __future__ import annotations

import html

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")


def line_chart(
    series: dict[str, list], x_label: str, y_label: str, width: int = 640, height: int = 320
) -> str:
    points = [(float(x), float(y)) for values in series.values() for x, y in values]
    if not points:
        return "<p>(no data)</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    pad = 48

    def sx(x: float) -> float:
        return pad + (x - x0) / (x1 - x0) * (width - 2 * pad)

    def sy(y: float) -> float:
        return height - pad - (y - y0) / (y1 - y0) * (height - 2 * pad)

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(y_label)} by {html.escape(x_label)}'>",
        f"<line x1='{pad}' y1='{height - pad}' x2='{width - pad}' y2='{height - pad}' "
        "stroke='#333'/>",
        f"<line x1='{pad}' y1='{pad}' x2='{pad}' y2='{height - pad}' stroke='#333'/>",
        f"<text x='{width / 2}' y='{height - 10}' text-anchor='middle'>{x_label}</text>",
        f"<text x='12' y='{pad - 12}'>{y_label}</text>",
        f"<text x='{pad - 4}' y='{sy(y0)}' text-anchor='end' font-size='11'>{y0:.3g}</text>",
        f"<text x='{pad - 4}' y='{sy(y1) + 10}' text-anchor='end' font-size='11'>{y1:.3g}</text>",
        f"<text x='{sx(x1)}' y='{height - pad + 14}' text-anchor='end' font-size='11'>"
        f"{x1:.0f}</text>",
    ]
    for i, (name, values) in enumerate(series.items()):
        if not values:
            continue
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(float(x)):.1f},{sy(float(y)):.1f}" for x, y in values)
        parts.append(
            f"<polyline fill='none' stroke='{colour}' stroke-width='2' points='{coords}'/>"
        )
        parts.append(
            f"<text x='{width - pad}' y='{pad + 16 * i}' fill='{colour}' "
            f"text-anchor='end'>{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)
