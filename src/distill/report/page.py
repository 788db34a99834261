"""The report page: one self-contained HTML file (inline SVG charts, inline CSS and script,
no network), assembled from a list of sections.

`SECTIONS` is the page's table of contents: each builder takes the `PageContext` and
returns a `Section` or None (nothing to show). Another part of distill adds a section by
writing a builder in its own module (it needs only `distill.report.section` and
`distill.report.charts`) and listing it in `SECTIONS` where it belongs.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from distill.report import charts
from distill.report.browser import BROWSER_JS, browser_html
from distill.report.distributions import collect_distributions, right_and_wrong
from distill.report.eval_section import eval_section
from distill.report.rows import SampleConfig, sample_rows
from distill.report.section import PageContext, PageOptions, Section
from distill.report.tokens import load_dataset_tokenizer, token_strings
from distill.store import load_manifest


def choice_letters(curated: dict[str, Any] | None) -> str:
    """The answer letters the recipe's mcq_verify step graded with ("ABCD" by default, as
    MMLU's four options)."""
    steps = ((curated or {}).get("params") or {}).get("recipe", {}).get("steps", [])
    for step in steps:
        if step.get("name") == "mcq_verify" and step.get("letters"):
            return str(step["letters"])
    return "ABCD"


def chance_level(curated: dict[str, Any] | None) -> float:
    """The accuracy of a random pick among the choices: 1 / number of options."""
    return 1.0 / len(choice_letters(curated))


def funnel_stages(curated: dict[str, Any]) -> list[tuple[str, int, str]]:
    steps = curated.get("steps") or []
    first = steps[0]["input"] if steps else curated["counts"].get("input", 0)
    stages = [("input", int(first), "")]
    for step in steps:
        dropped = ", ".join(f"{k} {v}" for k, v in sorted(step.get("dropped", {}).items()))
        stages.append((step["step"], int(step["kept"]), dropped))
    return stages


def _funnel(ctx: PageContext) -> Section | None:
    curated = ctx.report["curated"][0] if ctx.report["curated"] else None
    if curated is None:
        return None
    figure = charts.funnel_figure(funnel_stages(curated))
    return Section("funnel", "curation funnel", charts.svg(figure))


def _domains(ctx: PageContext) -> Section | None:
    curated = ctx.report["curated"][0] if ctx.report["curated"] else None
    stats = (curated or {}).get("stats") or {}
    if not stats.get("domains_before"):
        return None
    accuracy = {d: a["accuracy"] for d, a in (stats.get("accuracy_by_domain") or {}).items()}
    figure = charts.domains_figure(
        stats["domains_before"], stats.get("domains_after", {}), accuracy, chance_level(curated)
    )
    return Section("domains", "domains before and after, teacher accuracy", charts.svg(figure))


def _signals(ctx: PageContext) -> Section | None:
    dist = ctx.distributions
    if dist is None:
        return None
    panels = []
    for name, found in dist.aurocs.items():
        if not found["n"]:  # e.g. self_consistency with one sample per prompt
            continue
        value = "n/a" if found["auroc"] is None else f"{found['auroc']:.3f}"
        panels.append((f"{name}: AUROC {value} (n={found['n']})", right_and_wrong(dist, name), 20))
    if not panels:
        return None
    figure = charts.histograms_figure(panels, {"right": charts.RIGHT, "wrong": charts.WRONG})
    note = (
        "<p>Each confidence signal over every row curation read (kept and rejected), split by "
        "whether the teacher's answer was right. AUROC: how well the signal ranks wrong answers "
        "below right ones (0.5 = chance, 1 = perfect).</p>"
    ) + _step_aurocs(ctx)
    return Section("signals", "confidence signals: right vs wrong", note + charts.svg(figure))


def _step_aurocs(ctx: PageContext) -> str:
    """What a `confidence` step recorded, on the rows that reached it, when the recipe had one."""
    curated = ctx.report["curated"][0] if ctx.report["curated"] else {}
    recorded = (curated.get("stats") or {}).get("signal_auroc") or {}
    found = [f"{name} {v['auroc']} (n={v['n']})" for name, v in recorded.items() if v["auroc"]]
    if not found:
        return ""
    return f"<p>The confidence step recorded, on the rows it read: {'; '.join(found)}.</p>"


def _distributions(ctx: PageContext) -> Section | None:
    dist = ctx.distributions
    if dist is None or not dist.groups:
        return None
    colours = {"kept": charts.KEPT, "rejected": charts.REJECTED}
    lengths = {name: g.length_array() for name, g in dist.groups.items()}
    top = max((int(v.max(initial=0)) for v in lengths.values()), default=1)
    length_edges = np.linspace(0, max(top, 1), 31)
    length_counts = {n: np.histogram(v, length_edges)[0] for n, v in lengths.items()}
    entropy_counts = {
        n: g.entropy_counts for n, g in dist.groups.items() if g.entropy_counts is not None
    }
    panels = [("response length", "tokens", length_edges, length_counts)]
    if entropy_counts:
        panels.append(("teacher entropy per token", "nats", dist.entropy_edges, entropy_counts))
    figure = charts.counts_figure(panels, colours)
    return Section("distributions", "lengths and teacher entropy", charts.svg(figure))


def heldout_points(run: dict[str, Any], key: str) -> list[list[float]]:
    """A held-out curve, starting from the untrained student at step 0."""
    points = [[h["step"], h[key]] for h in run.get("heldout_curve") or [] if key in h]
    initial = (run.get("heldout_initial") or {}).get(key)
    return ([[0, initial]] if initial is not None else []) + points


def _run_label(run: dict[str, Any]) -> str:
    """A run's name in the legends: its folder, with its mode when the folder doesn't say it."""
    folder, mode = Path(run["path"]).name, str(run.get("mode"))
    return folder if folder == mode else f"{folder} ({mode})"


def _training(ctx: PageContext) -> Section | None:
    runs = ctx.report["training"]
    if not runs:
        return None
    losses = {_run_label(r): r.get("loss_curve") or [] for r in runs}
    panels = [("training loss (each mode's own objective)", "loss", losses)]
    for key, label in (("kl", "held-out KL to the teacher (nats/token)"),
                       ("nll", "held-out NLL (nats/token)")):  # fmt: skip
        series = {_run_label(r): heldout_points(r, key) for r in runs if r.get("heldout_curve")}
        if any(series.values()):
            panels.append((label, key.upper(), series))
    note = (
        "<p>SFT's loss is cross-entropy on the teacher's tokens, KD mixes the sparse KL with it:"
        " compare the held-out curves, not the training losses.</p>"
    )
    return Section("training", "training", note + charts.svg(charts.curves_figure(panels)))


def _browser(ctx: PageContext) -> Section | None:
    dataset = ctx.dataset
    if dataset is None or ctx.options.rows_per_group == 0:
        return None
    config = SampleConfig(
        per_group=ctx.options.rows_per_group,
        max_tokens=ctx.options.max_tokens,
        top_alternatives=ctx.options.alternatives,
    )
    groups = sample_rows(Path(dataset["path"]), config)
    tokenizer = load_dataset_tokenizer(load_manifest(Path(dataset["path"])), _tokenizer_dirs(ctx))
    ids = [i for rows in groups.values() for r in rows for t in r["tokens"]
           for i in [t["id"], *(a for a, _ in t["top"])]]  # fmt: skip
    strings = token_strings(tokenizer, ids)
    decoded = "token strings from the dataset's tokenizer" if tokenizer else "token ids (#id): "
    decoded += "" if tokenizer else "no matching tokenizer was found offline (report --tokenizer)"
    note = (
        f"<p>A fixed sample of <code>{html.escape(dataset['path'])}</code>: kept rows and the "
        f"rejected rows of each reason; {decoded}. Hover a token for the teacher's top-k.</p>"
    )
    return Section("rows", "rows", note + browser_html(groups, strings, dataset["top_k"] or 1))


def _tokenizer_dirs(ctx: PageContext) -> list[Path]:
    # a student saves the teacher's tokenizer beside its weights
    runs = [Path(run["path"]) / "model" for run in ctx.report["training"]]
    return [*ctx.options.tokenizer_dirs, *runs]


SectionBuilder = Callable[[PageContext], Section | None]
SECTIONS: list[SectionBuilder] = [
    _funnel, _domains, _signals, _distributions, _training, eval_section, _browser,
]  # fmt: skip


def page_context(report: dict[str, Any], options: PageOptions | None = None) -> PageContext:
    """The context builders read: the dataset the page shows (the first curated dataset,
    else the first generated one) and its distributions, streamed once."""
    options = options or PageOptions()
    entries = report["curated"] or report["generated"]
    dataset = entries[0] if entries else None
    dist = None
    if dataset is not None:
        letters = choice_letters(report["curated"][0] if report["curated"] else None)
        dist = collect_distributions(Path(dataset["path"]), dataset["top_k"] or 1, letters)
    return PageContext(report=report, options=options, dataset=dataset, distributions=dist)


PAGE_CSS = """
body{font:14px/1.45 system-ui,sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em;color:#222}
nav.toc a{margin-right:1em}
section{margin:2em 0}
figure{margin:0}
svg{max-width:100%;height:auto}
table{border-collapse:collapse;margin:.6em 0}
td,th{border:1px solid #ccc;padding:.25em .55em;text-align:left;font-size:13px}
.controls{margin:.5em 0}.controls label{margin-right:1em}.legend{color:#666;font-size:12px}
.tabs{display:flex;flex-wrap:wrap;gap:.3em;margin:.6em 0}
.tab{border:1px solid #bbb;background:#f4f4f4;border-radius:4px;padding:.25em .7em;cursor:pointer}
.tab.active{background:#2b7bba;color:#fff;border-color:#2b7bba}
.row{border:1px solid #ddd;border-radius:6px;padding:.6em .8em;margin:.6em 0}
.facts{display:flex;flex-wrap:wrap;gap:.3em 1.2em;font-size:12px;color:#444}
.row pre{white-space:pre-wrap;background:#fafafa;padding:.5em;margin:.3em 0;font-size:12px}
.response{white-space:pre-wrap;font-family:ui-monospace,monospace;font-size:13px;margin-top:.4em}
.tok{border-radius:2px;cursor:default}.tok:hover{outline:1px solid #333}
.cut{color:#888}
#tip{position:absolute;z-index:9;background:#fff;border:1px solid #888;border-radius:4px;
 padding:.4em .6em;box-shadow:0 2px 8px #0003;font-size:12px;max-width:32em}
#tip table{margin:.3em 0 0}#tip td{border:none;padding:.05em .4em}
#tip tr.sampled{background:#fff3cd}#tip i{display:inline-block;height:.7em;background:#2b7bba}
"""


def page_html(title: str, header: str, sections: list[Section]) -> str:
    """The whole page: a table of contents, then each section in order."""
    toc = "".join(f"<a href='#{s.anchor}'>{html.escape(s.title)}</a>" for s in sections)
    body = "".join(
        f"<section id='{s.anchor}'><h2>{html.escape(s.title)}</h2>{s.body}</section>"
        for s in sections
    )
    script = f"<script>{BROWSER_JS}</script>" if any(s.anchor == "rows" for s in sections) else ""
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{PAGE_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{header}<nav class='toc'>{toc}</nav>{body}{script}"
        "</body></html>\n"
    )
