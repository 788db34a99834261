"""A row of an input file that can't be used, and the check behind most such rows.

Prompt files (`distill gen`, `distill score`) and multiple-choice question files (the MMLU
format: `distill gen --format mmlu`, `distill eval`) are read by different packages but
report a bad row the same way: `PromptError` names file, line and field, and
`text_problem` says why a value is not usable text.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


class PromptError(ValueError):
    """A prompt row that can't be used; the message names file, line and field."""

    def __init__(self, file: str, line: int, field: str, problem: str) -> None:
        super().__init__(f"{file}:{line}: field '{field}': {problem}")
        self.file, self.line, self.field, self.problem = file, line, field, problem


def content_prompt_id(messages: list[dict[str, str]], occurrence: int) -> str:
    """A prompt's id when its file gives none: the hash of its chat messages and of how
    many times that same chat occurred in the file up to this row (1 for the first).
    `distill gen` names prompts so; `distill eval` recomputes it to match a run's
    recorded held-out ids."""
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{canonical}\x1f{occurrence}".encode()).hexdigest()[:16]


def printable(text: str) -> str:
    """`text` safe to write as UTF-8: undecodable bytes and lone surrogates as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def text_problem(value: Any) -> str | None:
    """Why `value` is not usable text, or None if it is."""
    if not isinstance(value, str):
        return f"{_kind(value)}, not a string"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"not valid UTF-8 text (character {err.start + 1})"
    return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    kinds = {dict: "an object", list: "a list", type(None): "null", bytes: "bytes"}
    return kinds.get(type(value), f"a {type(value).__name__}")
