"""`--engine` and `--ray-address`: where a command's work runs, declared once so every
command that offers the choice (gen, score, pack) reads the same in its help."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from distill.engine import EngineConfig, engine_config

EngineOption = Annotated[
    str,
    typer.Option(
        "--engine",
        # Escaped: typer renders help as rich markup, which would eat "[ray]".
        help=escape("local: this process | ray: a Ray cluster (pip install 'distill[ray]')"),
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster address (default: start a local cluster, or RAY_ADDRESS)",
    ),
]


def engine_from_options(kind: str, address: str | None) -> EngineConfig:
    """The `EngineConfig` the two options name; a ValueError (the CLI's one-line error)
    for an unknown engine, or an address without `--engine ray`."""
    return engine_config(kind, address)
