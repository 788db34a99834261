"""What `distill score` reads: (prompt, response) rows from a prompt file with a response
column, or from an existing distill dataset, and the token ids the teacher is forced through.

Tokenisation: teacher forcing needs ids, so a text response is tokenised once here (no
special tokens added) and the teacher's EOS is appended, so a record ends like a `gen`
record with finish_reason "stop". A distill dataset made with the same tokenizer keeps its
stored token ids (and finish reasons) unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from distill.gen.prompt_files import RowProblem, read_rows
from distill.gen.prompts import (
    FieldMapping,
    PromptError,
    PromptFormat,
    PromptRow,
    detect_format,
    load_prompts,
)
from distill.input_rows import text_problem
from distill.store import load_manifest, read_table


class ScoreMapping(FieldMapping):
    """`distill gen`'s field mapping plus the column that holds the response text."""

    model_config = ConfigDict(extra="forbid")
    response: str = "response"


@dataclass(frozen=True)
class ScoreItem:
    """One row to score: its prompt, the response as text and, if known, as ids."""

    row: PromptRow
    sample_index: int
    response_text: str
    token_ids: list[int] | None = None  # None: tokenise response_text
    finish_reason: str = "stop"


def load_responses(
    source: Path, fmt: PromptFormat | None = None, mapping: ScoreMapping | None = None
) -> list[ScoreItem]:
    """Rows of a prompt file with a response column; a bad row raises `PromptError`."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source}: file not found")
    fmt = fmt or detect_format(source)
    mapping = mapping or ScoreMapping()
    responses: dict[int, str] = {}
    for line, raw in read_rows(source, fmt):
        if isinstance(raw, RowProblem):
            raise PromptError(str(source), line, raw.field, raw.problem)
        if mapping.response not in raw or raw[mapping.response] is None:
            raise PromptError(str(source), line, mapping.response, "missing")
        text = raw[mapping.response]
        if text_problem(text) is not None or not text.strip():
            raise PromptError(str(source), line, mapping.response, "empty or not text")
        responses[line] = text
    prompt_mapping = FieldMapping(**mapping.model_dump(exclude={"response"}))
    batch = load_prompts(source, fmt, prompt_mapping)
    return [ScoreItem(row, 0, responses[row.source_row]) for row in batch.rows]


def load_dataset_responses(source: Path, tokenizer_hash: str) -> list[ScoreItem]:
    """Rows of a distill dataset; its token ids are kept if the tokenizer is the same."""
    manifest = load_manifest(source)
    same_tokenizer = manifest.tokenizer is not None and (
        manifest.tokenizer.tokenizer_hash == tokenizer_hash
    )
    columns = [
        "prompt_id",
        "sample_index",
        "source_file",
        "source_row",
        "domain",
        "reference",
        "messages",
        "response_text",
        "token_ids",
        "finish_reason",
    ]
    items = []
    for rec in read_table(source, columns=columns).to_pylist():
        row = PromptRow(
            prompt_id=rec["prompt_id"],
            source_file=rec["source_file"],
            source_row=rec["source_row"],
            messages=[{"role": m["role"], "content": m["content"]} for m in rec["messages"]],
            domain=rec["domain"],
            reference=rec["reference"],
        )
        ids = list(rec["token_ids"]) if same_tokenizer and rec["token_ids"] else None
        items.append(
            ScoreItem(row, rec["sample_index"], rec["response_text"], ids, rec["finish_reason"])
        )
    return items


def response_ids(teacher: Any, item: ScoreItem) -> list[int]:
    """The ids the teacher is forced through: stored ids, or the text tokenised once + EOS."""
    if item.token_ids is not None:
        return item.token_ids
    ids = list(teacher.tokenizer(item.response_text, add_special_tokens=False)["input_ids"])
    eos = teacher.tokenizer.eos_token_id
    if item.finish_reason == "stop" and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids
