"""Render a collected report: rich tables on the terminal, one static HTML page
(inline SVG, no scripts, no network), and the same figures as JSON beside it."""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from distill.locking import output_lock
from distill.report.eval_section import eval_sections
from distill.report.provenance import PROVENANCE_TABLES, provenance_tables
from distill.report.svg import line_chart
from distill.store import atomic_write_bytes


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


def _heldout_points(run: dict[str, Any]) -> list[list[float]]:
    """The held-out KL curve, starting from the untrained student at step 0."""
    points = [[h["step"], h["kl"]] for h in run.get("heldout_curve") or []]
    initial = (run.get("heldout_initial") or {}).get("kl")
    return ([[0, initial]] if initial is not None else []) + points


def render_html(report: dict[str, Any]) -> str:
    parts = ["<h1>distill report</h1>"]
    for gen in report["generated"]:
        parts.append(
            f"<p>gen <code>{html.escape(gen['path'])}</code>: "
            f"{gen['counts'].get('rows', 0)} records, teacher "
            f"<code>{html.escape(str(gen['teacher']))}</code>, top-k {gen['top_k']}</p>"
        )
    for name, rows in _tables(report).items():
        parts.append(f"<h2>{name}</h2>" + _html_table(TABLES[name], rows))
    train = report["training"]
    if train:
        series = {str(r.get("mode")): r.get("loss_curve") or [] for r in train}
        parts.append(
            "<h2>training loss</h2><p>Each mode's own objective: SFT is cross-entropy on the "
            "teacher's tokens, KD mixes the sparse KL with it; compare the held-out KL below, "
            "not these values.</p>" + line_chart(series, "step", "loss")
        )
        held = {str(r.get("mode")): _heldout_points(r) for r in train if r.get("heldout_curve")}
        if any(held.values()):
            parts.append("<h2>held-out KL to the teacher</h2>" + line_chart(held, "step", "KL"))
    parts.extend(eval_sections(report))  # `distill eval` results the report collected
    style = (
        "body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>distill report</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )


def write_report(report: dict[str, Any], html_path: Path) -> tuple[Path, Path]:
    """The HTML and its JSON figures, written atomically under the folder's writer lock."""
    html_path = Path(html_path)
    json_path = html_path.with_suffix(".json")
    with output_lock(html_path.parent):
        atomic_write_bytes(html_path, render_html(report).encode())
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
