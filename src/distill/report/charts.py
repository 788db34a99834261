"""The report's charts: matplotlib figures, each inlined in the page as SVG text.

Every builder returns a `Figure` (tests read its axes: the chance line, the limits) and
`svg(figure)` turns it into markup for the page. The figures are made with `Figure`
directly, never through pyplot, so no global state or GUI backend is involved, and text
stays text in the SVG (`svg.fonttype: none`): the page is searchable and small.
"""

from __future__ import annotations

import io
import re
from collections.abc import Mapping, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

KEPT, REJECTED, RIGHT, WRONG = "#2b7bba", "#d9603b", "#3a9a5b", "#c0392b"
SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "distill-report", "font.size": 9}


def svg(figure: Figure) -> str:
    """The figure as an inline `<svg>` in a `<figure>`: no XML prolog, no date, and ids
    that stay the same run to run."""
    buffer = io.StringIO()
    with matplotlib.rc_context(SVG_RC):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>", "", text[text.index("<svg") :], flags=re.S)
    return f"<figure class='chart'>{text}</figure>"


def _figure(width: float, height: float, cols: int = 1) -> tuple[Figure, list]:
    figure = Figure(figsize=(width, height), layout="constrained")
    axes = figure.subplots(1, cols, squeeze=False)[0]
    for ax in axes:
        ax.spines[["top", "right"]].set_visible(False)
    return figure, list(axes)


def funnel_figure(stages: Sequence[tuple[str, int, str]]) -> Figure:
    """One horizontal bar per stage (label, rows left, what it dropped), first at the top."""
    figure, (ax,) = _figure(7.5, 0.45 * len(stages) + 0.9)
    labels = [label for label, _, _ in stages]
    counts = np.array([count for _, count, _ in stages], dtype=float)
    y = np.arange(len(stages))[::-1]
    ax.barh(y, counts, color=KEPT)
    top = float(counts.max(initial=0)) or 1.0
    for row, (_, count, dropped) in zip(y, stages, strict=True):
        note = f" {count}" + (f"   (-{dropped})" if dropped else "")
        ax.text(count, row, note, va="center", fontsize=8)
    ax.set_yticks(y, labels)
    ax.set_xlim(0, top * 1.6)  # room for the drop notes right of the bars
    ax.set_xlabel("rows left after the step")
    return figure


def domains_figure(
    before: Mapping[str, int],
    after: Mapping[str, int],
    accuracy: Mapping[str, float],
    chance: float,
) -> Figure:
    """Rows per domain before and after curation, and the teacher's accuracy per domain
    with the chance level of a random pick among the choices marked."""
    domains = sorted(set(before) | set(after))
    figure, (rows_ax, acc_ax) = _figure(8.5, 0.28 * len(domains) + 1.4, cols=2)
    y = np.arange(len(domains))[::-1]
    rows_ax.barh(y + 0.2, [before.get(d, 0) for d in domains], 0.4, color="#9bbcd9", label="before")
    rows_ax.barh(y - 0.2, [after.get(d, 0) for d in domains], 0.4, color=KEPT, label="after")
    rows_ax.set_yticks(y, domains)
    rows_ax.set_xlim(left=0)
    rows_ax.set_xlabel("rows")
    rows_ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncols=2, frameon=False)
    acc_ax.barh(y, [accuracy.get(d, np.nan) for d in domains], color=RIGHT)
    acc_ax.axvline(chance, color="#555", linestyle="--", linewidth=1)
    acc_ax.text(chance, len(domains) - 0.4, f" chance {chance:.0%}", fontsize=8, color="#555")
    acc_ax.set_yticks(y, [""] * len(domains))
    acc_ax.set_xlim(0, 1)
    acc_ax.set_xlabel("teacher accuracy (graded rows)")
    return figure


def histograms_figure(
    panels: Sequence[tuple[str, Mapping[str, np.ndarray], int | np.ndarray]],
    colours: Mapping[str, str],
) -> Figure:
    """Overlaid histograms, one panel per (title, {series: values}, bins)."""
    figure, axes = _figure(3.0 * len(panels), 2.4, cols=len(panels))
    for ax, (title, series, bins) in zip(axes, panels, strict=True):
        finite = [v[np.isfinite(v)] for v in series.values()]
        joined = np.concatenate(finite) if finite else np.zeros(0)
        edges = np.histogram_bin_edges(joined, bins) if joined.size else np.linspace(0, 1, 11)
        for (name, _), values in zip(series.items(), finite, strict=True):
            ax.hist(
                values, edges, alpha=0.55, color=colours.get(name), label=f"{name} ({values.size})"
            )
        ax.set_title(title, fontsize=9)
        ax.set_ylabel("rows")
        ax.legend(loc="upper right", frameon=False, fontsize=7)
    return figure


def counts_figure(
    panels: Sequence[tuple[str, str, np.ndarray, Mapping[str, np.ndarray]]],
    colours: Mapping[str, str],
) -> Figure:
    """Histograms counted elsewhere (streamed): (title, x label, bin edges, {series: counts})."""
    figure, axes = _figure(4.2 * len(panels), 2.6, cols=len(panels))
    for ax, (title, x_label, edges, series) in zip(axes, panels, strict=True):
        widths = np.diff(edges)
        for name, counts in series.items():
            share = counts / max(counts.sum(), 1)
            ax.bar(edges[:-1], share, widths, align="edge", alpha=0.55, color=colours.get(name),
                   label=f"{name} ({int(counts.sum())})")  # fmt: skip
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(x_label)
        ax.set_ylabel("share")
        ax.set_xlim(left=0)
        ax.legend(loc="upper right", frameon=False, fontsize=7)
    return figure


def curves_figure(
    panels: Sequence[tuple[str, str, Mapping[str, Sequence[Sequence[float]]]]],
) -> Figure:
    """Line charts of (title, y label, {series: [(step, value)]}), both axes from 0."""
    figure, axes = _figure(4.2 * len(panels), 2.8, cols=len(panels))
    for ax, (title, y_label, series) in zip(axes, panels, strict=True):
        for name, points in series.items():
            if len(points):
                xs, ys = np.asarray(points, dtype=float).T
                ax.plot(xs, ys, marker="o", markersize=2.5, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("step")
        ax.set_ylabel(y_label)
        ax.set_xlim(left=0)
        ax.set_ylim(bottom=0)  # from 0: a small gap must not look large
        ax.legend(loc="upper right", frameon=False, fontsize=8)
    return figure
