"""Render a collected report: rich tables on the terminal, one self-contained HTML page
(`page`: inline SVG charts, the row browser, no network), and the figures as JSON beside it."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from distill.locking import output_lock
from distill.report.collect import METRICS_NAME
from distill.report.page import SECTIONS, page_context, page_html
from distill.report.provenance import PROVENANCE_TABLES, provenance_tables
from distill.report.section import PageOptions, Section
from distill.store import MANIFEST_NAME, atomic_write_bytes, load_manifest
from distill.store.lineage import rejected_path


def _rows_steps(cur: dict[str, Any]) -> list[list[str]]:
    rows = []
    for step in cur.get("steps", []):
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(step.get("dropped", {}).items()))
        rows.append([step["step"], str(step["input"]), str(step["kept"]), dropped or "-"])
    return rows


def _rows_domains(cur: dict[str, Any]) -> list[list[str]]:
    stats = cur.get("stats", {})
    before, after = stats.get("domains_before", {}), stats.get("domains_after", {})
    accuracy = stats.get("accuracy_by_domain", {})
    rows = []
    for domain in sorted(set(before) | set(after)):
        acc = accuracy.get(domain)
        acc_text = f"{acc['accuracy']:.1%} ({acc['correct']}/{acc['graded']})" if acc else "-"
        rows.append([domain, str(before.get(domain, 0)), str(after.get(domain, 0)), acc_text])
    return rows


def _rows_training(report: dict[str, Any]) -> list[list[str]]:
    rows = []
    for run in report["training"]:
        held, first = run.get("heldout") or {}, run.get("heldout_initial") or {}
        curve = run.get("loss_curve") or []
        rows.append(
            [
                str(run.get("mode")),
                str(run.get("steps")),
                f"{curve[-1][1]:.4f}" if curve else "-",
                f"{first.get('kl', float('nan')):.4f}",
                f"{held.get('kl', float('nan')):.4f}",
                f"{held.get('nll', float('nan')):.4f}",
                f"{run.get('heldout_rows', '-')} / {held.get('tokens', '-')}",
            ]
        )
    return rows


def _rows_gen_runs(report: dict[str, Any]) -> list[list[str]]:
    """One row per gen run: which teacher, what it wrote, what failed, what it cost."""
    rows = []
    for gen in report["generated"]:
        for run in gen.get("stats", {}).get("runs", []):
            failed = ", ".join(
                f"{key.removeprefix('failed_')}: {value}"
                for key, value in sorted(run.items())
                if key.startswith("failed_")
            )
            cost = run.get("cost_usd")
            rows.append(
                [
                    run["run_id"],
                    run["teacher_id"],
                    str(run.get("written", "-")),
                    f"{run.get('failed', 0)}" + (f" ({failed})" if failed else ""),
                    str(run.get("retries", 0)),
                    "-" if cost is None else f"{cost:.4f}",
                ]
            )
    return rows


TABLES = {
    "gen runs": ["run", "teacher", "written", "failed", "retries", "cost USD"],
    "steps": ["step", "in", "kept", "dropped (reason: rows)"],
    "domains": ["domain", "before", "after", "teacher accuracy"],
    "training": [
        "mode",
        "steps",
        "final loss",
        "held-out KL before",
        "held-out KL after",
        "held-out NLL",
        "held-out rows / tokens",
    ],
    **PROVENANCE_TABLES,
}


def _tables(report: dict[str, Any]) -> dict[str, list[list[str]]]:
    tables: dict[str, list[list[str]]] = {}
    runs = _rows_gen_runs(report)
    if runs:
        tables["gen runs"] = runs
    if report["curated"]:
        tables["steps"] = _rows_steps(report["curated"][0])
        tables["domains"] = _rows_domains(report["curated"][0])
    if report["training"]:
        tables["training"] = _rows_training(report)
    tables.update(provenance_tables(report))
    return tables


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    for gen in report["generated"]:
        counts = gen["counts"]
        console.print(
            f"[bold]gen[/bold] {gen['path']}: {counts.get('rows', 0)} records "
            f"from {counts.get('prompts', 0)} prompts, teacher {gen['teacher']}, "
            f"top-k {gen['top_k']}"
        )
    for name, rows in _tables(report).items():
        table = Table(title=name)
        for column in TABLES[name]:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)


def _html_table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: dict[str, Any], options: PageOptions | None = None) -> str:
    """The page: the charts and the row browser (`page.SECTIONS`), then the tables."""
    context = page_context(report, options)
    sections = [section for build in SECTIONS if (section := build(context)) is not None]
    tables = _tables(report)
    figures = "".join(
        f"<h3>{name}</h3>" + _html_table(TABLES[name], rows)
        for name, rows in tables.items()
        if name not in PROVENANCE_TABLES
    )
    if figures:
        sections.append(Section("tables", "figures as recorded", figures))
    provenance = "".join(
        f"<h3>{name}</h3>" + _html_table(TABLES[name], rows)
        for name, rows in tables.items()
        if name in PROVENANCE_TABLES
    )
    if provenance:
        sections.append(Section("provenance", "lineage and licences", provenance))
    return page_html("distill report", _header(report), sections)


def _header(report: dict[str, Any]) -> str:
    lines = [
        f"<p>gen <code>{html.escape(gen['path'])}</code>: {gen['counts'].get('rows', 0)} "
        f"records, teacher <code>{html.escape(str(gen['teacher']))}</code>, "
        f"top-k {gen['top_k']}</p>"
        for gen in report["generated"]
    ]
    for cur in report["curated"]:
        codec = (cur.get("params") or {}).get("codec", "plain")
        lines.append(
            f"<p>curated <code>{html.escape(cur['path'])}</code>: "
            f"{cur['counts'].get('kept', 0)} kept, {cur['counts'].get('rejected', 0)} rejected, "
            f"teacher <code>{html.escape(str(cur['teacher']))}</code>, top-k {cur['top_k']}, "
            f"codec {html.escape(str(codec))}</p>"
        )
    return "".join(lines)


def default_report_path(dirs: list[Path]) -> Path:
    """`report.html` beside the inputs: in the parent of a dataset or training run given
    first, or in a folder of them (the shape `distill demo` writes); never inside a dataset."""
    first = Path(dirs[0])
    is_input = (first / MANIFEST_NAME).is_file() or (first / METRICS_NAME).is_file()
    return (first.resolve().parent if is_input else first) / "report.html"


def _input_datasets(report: dict[str, Any]) -> list[Path]:
    paths = [Path(e["path"]) for e in [*report["generated"], *report["curated"]]]
    paths += [Path(link["path"]) for link in (report.get("provenance") or {}).get("lineage", [])]
    for dataset in list(paths):  # a curated dataset's rejected rows are an input too
        if (dataset / MANIFEST_NAME).is_file():
            found = rejected_path(dataset, load_manifest(dataset))
            paths += [found] if found is not None else []
    return [p.resolve() for p in paths]


def check_report_path(report: dict[str, Any], html_path: Path) -> None:
    """Refuse a report path inside an input dataset: its writer owns every file there."""
    folder = Path(html_path).resolve().parent
    for dataset in _input_datasets(report):
        if folder == dataset or dataset in folder.parents:
            raise ValueError(
                f"{html_path}: inside the dataset {dataset}; write the report beside it "
                "(e.g. --out report.html in its parent folder)"
            )


def write_report(
    report: dict[str, Any], html_path: Path, options: PageOptions | None = None
) -> tuple[Path, Path]:
    """The HTML and its JSON figures, written atomically under the folder's writer lock."""
    html_path = Path(html_path)
    check_report_path(report, html_path)
    json_path = html_path.with_suffix(".json")
    with output_lock(html_path.parent):  # first: a second writer is refused before any work
        atomic_write_bytes(html_path, render_html(report, options).encode())
        atomic_write_bytes(json_path, json.dumps(report, indent=2, default=str).encode() + b"\n")
    return html_path, json_path


def print_curation(result: Any, console: Console) -> None:
    """The per-step table `distill curate` prints (result: curate.CurateResult)."""
    table = Table(title="curation")
    for column in TABLES["steps"]:
        table.add_column(column)
    for step in result.steps:
        dropped = ", ".join(f"{k}: {v}" for k, v in sorted(step.dropped.items()))
        table.add_row(step.step, str(step.input), str(step.kept), dropped or "-")
    console.print(table)
