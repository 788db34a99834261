"""Readable metavars in every verb's help: `PATH`, `TEXT`, `INTEGER`, `DATASET`.

Typer labels a value by its Python annotation (`<path>`, `<list[Path]>`, `<str>`, and
`<bool>` beside a flag that takes no value). The command classes here give every option
and argument that names no metavar of its own one in the usual CLI words, and a flag
none, as its help is drawn: a verb added later reads the same by itself.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

_WORDS = {
    "path": "PATH",
    "str": "TEXT",
    "int": "INTEGER",
    "float": "FLOAT",
    "int range": "INTEGER",
    "float range": "FLOAT",
}


def readable_type(param: TyperArgument | TyperOption) -> str:
    """The value's kind in CLI words; a repeatable one ends in '...'."""
    label = param.display_type(None).strip("<>")  # type: ignore[arg-type]
    repeated = label.startswith("list[")
    label = label.removeprefix("list[").removesuffix("]") if repeated else label
    word = _WORDS.get(label, label.upper())
    return f"{word}..." if repeated else word


def make_readable(params: list[Any]) -> None:
    for param in params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else readable_type(param)
        elif isinstance(param, TyperArgument):
            kind = readable_type(param).removesuffix("...")
            if param.metavar is None:
                param.metavar = param.name.upper() if param.name else kind
            # the type column beside the argument's name: PATH, not <path>
            param.display_type_rich = lambda ctx, kind=kind: kind  # type: ignore[method-assign]
            # the usage line: DATASET and [RECORD_ID], not {DATASET}
            name = param.metavar.strip("[]")  # typer brackets an optional one's itself
            usage = name if param.required else f"[{name}]"
            usage += "..." if param.nargs != 1 else ""
            param._usage_display_name = lambda usage=usage: usage  # type: ignore[method-assign]


class ReadableCommand(TyperCommand):
    """A verb whose help shows readable metavars (its --help option included)."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        make_readable(params)
        return params


class ReadableGroup(TyperGroup):
    """The app itself (--version, -v, the completion options), with readable metavars too."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        make_readable(params)
        return params
