"""A row's audit on the terminal: one panel per row, sections in the order a reader asks."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from distill.audit.row import RowAudit


def _pairs(title: str, values: dict[str, Any]) -> Table:
    table = Table(title=title, title_justify="left", show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    for key, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        table.add_row(key, text)
    return table


def print_audit(audit: RowAudit, console: Console) -> None:
    status = "[green]kept[/green]" if audit.status == "kept" else "[red]rejected[/red]"
    console.print(Panel(f"{audit.record_id}  {status}  in {audit.found_in}", expand=False))
    if audit.rejection is not None:
        console.print(_pairs("rejection", audit.rejection))
    source = dict(audit.source)
    if source.get("unchanged") is False:
        source["unchanged"] = "NO: the file changed since gen read it"
    console.print(_pairs("source", source))
    last = audit.prompt["messages"][-1]["content"] if audit.prompt["messages"] else ""
    console.print(_pairs("prompt", {"tokens": audit.prompt["tokens"], "last message": last}))
    console.print(_pairs("response", audit.response))
    console.print(_pairs("teacher", audit.teacher))
    console.print(_pairs("run", audit.run))
    chain = Table("dataset", "kind", "codec", "steps passed", title="lineage", title_justify="left")
    for link in audit.chain:
        chain.add_row(link["path"], link["kind"], link["codec"], ", ".join(link["steps_passed"]))
    console.print(chain)
    if audit.training_runs:
        runs = Table("run", "mode", "used", title="training runs", title_justify="left")
        for run in audit.training_runs:
            why = "empty response: skipped" if run.get("empty_response") else "held out"
            runs.add_row(run["run_dir"], run["mode"], "yes" if run["used"] else why)
        console.print(runs)
    elif audit.status == "kept":
        console.print("training runs: none found (give --runs DIR to look elsewhere)")
