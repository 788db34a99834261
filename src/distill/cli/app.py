"""The Typer app and what the commands share: the console, `--teacher-opt` parsing, failing."""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

app = typer.Typer(
    help="Distillation data: generate with top-k, curate, train, report.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
console = Console(stderr=True)


def print_version(requested: bool) -> None:
    """`--version`: the installed package's version, read from its metadata (one source)."""
    if requested:
        typer.echo(f"distill {importlib.metadata.version('distill')}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=print_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Distillation data: generate with top-k, curate, train, report."""


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
    # Escaped: a message is text, and one naming `distill[ray]` must keep its brackets.
    console.print(f"[red]error:[/red] {escape(message)}")
    raise typer.Exit(code=2)


def exit_hard_after_vllm(command: Callable[..., None]) -> Callable[..., None]:
    """For a command whose `--teacher` may run a vLLM engine in this process: when one
    ran, end the process with `os._exit` once the command is done (its files closed, the
    engine shut down by `teacher_in_use`) instead of through interpreter finalisation.

    Why: after a vLLM run, finalisation aborts the process now and then ("terminate called
    without an active exception", exit 134 / -6) in native teardown with no Python frame
    on the stack, after the data is written and the engine is down: 1 run in 8 of `distill
    score --teacher vllm:` here, and once in CI. A script must not see a finished run as
    a crash. Other exceptions keep their traceback (they propagate as usual).
    """

    @functools.wraps(command)  # typer reads the options from the wrapped signature
    def run(**options: Any) -> None:
        teacher = options.get("teacher")
        specs = teacher if isinstance(teacher, list) else [teacher or ""]
        if not any(spec.startswith("vllm:") for spec in specs):
            command(**options)
            return
        try:
            command(**options)
            code = 0
        except typer.Exit as stop:
            code = stop.exit_code
        console.file.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        logging.shutdown()
        os._exit(code)

    return run
