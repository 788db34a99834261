"""The text of a row that curation steps compare: the prompt as the user last phrased it,
the response, or both, and the normal form exact matching uses.

Shared by the dedup steps (`distill.curate.dedup`), `decontaminate`, `language` and
`llm_judge`, so every step means the same thing by "the prompt".
"""

from __future__ import annotations

import re
from typing import Any, Literal

_WHITESPACE = re.compile(r"\s+")

TextField = Literal["prompt", "response", "both"]


def normalize_text(text: str) -> str:
    """Casefolded, whitespace runs collapsed to one space, stripped."""
    return _WHITESPACE.sub(" ", text.casefold()).strip()


def last_user_message(messages: list[dict[str, Any]] | None) -> str:
    """The prompt as the user last phrased it; '' when there is no user turn."""
    for message in reversed(messages or []):
        if message.get("role") == "user":
            return message.get("content") or ""
    return ""


def row_text(field: str, messages: list[dict[str, Any]] | None, response: str) -> str:
    """The last user message ("prompt"), the response, or both joined by a newline."""
    if field == "prompt":
        return last_user_message(messages)
    if field == "response":
        return response
    return last_user_message(messages) + "\n" + response
