"""The Typer app and what the commands share: the console, `--teacher-opt` parsing, failing."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(
    help="Distillation data: generate with top-k, curate, train, report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


def teacher_options(items: list[str] | None) -> dict[str, str]:
    """`--teacher-opt KEY=VALUE`, repeated, as a dict the backend's config validates."""
    options = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--teacher-opt {item!r}: expected KEY=VALUE")
        options[key.strip()] = value
    return options


def fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(code=2)
