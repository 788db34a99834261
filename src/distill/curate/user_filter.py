"""`user_filter`: a keep/drop rule of your own, named by its import path.

`function: "pkg.module:func"` is imported and called with the row (the columns in
`columns`); it returns True to keep, False to drop, or (keep, note) as in datatrove, the
note landing in the drop details.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from functools import cached_property
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from distill.curate.base import Drop, RejectReason, RowStep


def import_function(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise ValueError(f"function must look like 'pkg.module:func', got {path!r}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r} for {path!r}: {exc}") from exc
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{path!r}: {module_name} has no callable {attribute!r}")
    return function


class UserFilter(RowStep):
    """Your own keep/drop rule; imported once when the recipe is loaded, so typos fail early."""

    name: Literal["user_filter"] = "user_filter"
    columns: ClassVar[tuple[str, ...]] = (
        "record_id",
        "prompt_id",
        "domain",
        "reference",
        "messages",
        "response_text",
        "finish_reason",
    )

    function: str = Field(description="'pkg.module:func'; func(row) -> bool | (bool, str)")

    @field_validator("function")
    @classmethod
    def _importable(cls, value: str) -> str:
        import_function(value)
        return value

    @cached_property
    def _function(self) -> Callable[..., Any]:
        return import_function(self.function)

    def filter(self, row: dict[str, Any]) -> Drop | None:
        result = self._function(row)
        keep, note = result if isinstance(result, tuple) else (result, None)
        if keep:
            return None
        details: dict[str, Any] = {"function": self.function}
        if note is not None:
            details["note"] = str(note)
        return Drop(RejectReason.USER_FILTER, details)
