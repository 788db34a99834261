"""Prompt sources: JSONL, Parquet, CSV, saved HF `datasets` and the built-in MMLU format.

Every row becomes a `PromptRow` with chat messages. A bad row (broken JSON, a missing
field, an empty prompt, a prompt that is not a string, text that is not UTF-8, an id seen
on an earlier row) raises `PromptError` naming file, line and field; with `skip_invalid` it
is returned as an `InvalidPrompt` instead, so the run goes on and the row is written to the
rejects file with its reason. Reading the files themselves is `prompt_files`.

`iter_prompts` streams: one row (or one Parquet/`datasets` batch) is read at a time, and what
it remembers across rows (occurrence counts of each prompt text, the first line of each
`--id`) is kept as 128-bit hashes in `distill.gen.id_hashes.KeyMap`, 24 bytes a prompt, so
memory does not grow by Python objects per prompt. `load_prompts` collects the stream into a
`PromptBatch`, for small files and tests.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from distill.gen.id_hashes import KeyMap
from distill.gen.prompt_files import PromptFormat, RowProblem, read_rows
from distill.gen.prompt_sources import (
    PromptSource,
    check_source,
    in_memory,
    parquet_parts,
    source_name,
)
from distill.input_rows import PromptError, content_prompt_id, printable, text_problem
from distill.tasks.mcq import MMLU_FIELDS, mmlu_prompt
from distill.tasks.mmlu import is_mmlu_header_row


class FieldMapping(BaseModel):
    """Which input column holds what. `messages` (a chat list) wins over `prompt`."""

    model_config = ConfigDict(extra="forbid")
    prompt: str = "prompt"
    messages: str | None = None
    system: str | None = None
    id: str | None = None
    domain: str | None = "domain"
    reference: str | None = "reference"


@dataclass(frozen=True)
class PromptRow:
    prompt_id: str
    source_file: str
    source_row: int  # 1-based line (JSONL/CSV) or row number (Parquet/HF)
    messages: list[dict[str, str]]
    domain: str | None = None
    reference: str | None = None


@dataclass(frozen=True)
class InvalidPrompt:
    source_file: str
    source_row: int
    field: str
    reason: str
    raw: str


@dataclass
class PromptBatch:
    rows: list[PromptRow] = field(default_factory=list)
    invalid: list[InvalidPrompt] = field(default_factory=list)
    skipped_headers: int = 0


@dataclass
class PromptCounts:
    """What a pass of `iter_prompts` has read so far."""

    rows: int = 0
    invalid: int = 0
    skipped_headers: int = 0


def detect_format(source: PromptSource) -> PromptFormat:
    """The format of a source: an in-memory table is "arrow"; a folder of Parquet parts (a
    Hub snapshot) or a glob is "parquet"; another folder is a saved `datasets` one ("hf");
    a file is known by its suffix."""
    if in_memory(source):
        return "arrow"
    path = Path(source)  # type: ignore[arg-type]
    parts = parquet_parts(path)
    if parts is not None:
        if any(p.suffix.lower() not in (".parquet", ".pq") for p in parts):
            raise PromptError(str(path), 0, "--format", "a pattern must match Parquet files")
        return "parquet"
    if path.is_dir():
        return "hf"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".tsv"):
        return "csv"
    raise PromptError(str(path), 0, "--format", f"can't tell the format from '{suffix}'")


def _text(row: dict[str, Any], name: str | None, where: tuple[str, int]) -> str | None:
    """An optional scalar field as text (a number is written as such); nested is an error.
    NaN is missing, as pandas writes a missing value in a float column."""
    value = None if name is None else row.get(name)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return str(value)
    problem = text_problem(value)
    if problem is not None:
        raise PromptError(*where, name, problem)
    return value


def _chat_text(value: Any, where: tuple[str, int], name: str, what: str = "") -> str:
    """A prompt or a chat turn's text: a non-empty string. `what` names the turn's part."""
    problem = text_problem(value)
    if problem is None and not value.strip():
        problem = "empty"
    if problem is not None:
        raise PromptError(*where, name, f"{what}: {problem}" if what else problem)
    return value


def _messages(
    row: dict[str, Any], mapping: FieldMapping, system: str | None, where: tuple[str, int]
) -> list[dict[str, str]]:
    if mapping.messages is not None:
        chat = row.get(mapping.messages)
        if not isinstance(chat, list) or not chat:
            raise PromptError(*where, mapping.messages, "missing or not a non-empty list")
        messages = []
        for i, turn in enumerate(chat):
            if not isinstance(turn, dict):
                raise PromptError(*where, mapping.messages, f"turn {i} is not an object")
            content = _chat_text(turn.get("content"), where, mapping.messages, f"turn {i} content")
            role = _chat_text(turn.get("role", "user"), where, mapping.messages, f"turn {i} role")
            messages.append({"role": role, "content": content})
    else:
        if mapping.prompt not in row:
            raise PromptError(*where, mapping.prompt, "missing")
        text = row[mapping.prompt]
        if text is None or (isinstance(text, str) and not text.strip()):
            raise PromptError(*where, mapping.prompt, "empty prompt")
        messages = [{"role": "user", "content": _chat_text(text, where, mapping.prompt)}]
    row_system = _text(row, mapping.system, where) or system
    if row_system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": row_system})
    return messages


def _prompt_id(
    row: dict[str, Any], mapping: FieldMapping, messages: list, seen: KeyMap, where: tuple
) -> str:
    # Content hash + occurrence number: stable when rows are inserted or reordered
    # (so resume still finds its records), yet distinct for repeated prompts, which
    # curation, not generation, is the place to deduplicate.
    user_id = _text(row, mapping.id, where)
    if user_id:
        return user_id
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    return content_prompt_id(messages, seen.increment(canonical))


def load_prompts(
    path: PromptSource,
    fmt: PromptFormat | None = None,
    mapping: FieldMapping | None = None,
    system_prompt: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> PromptBatch:
    """Every prompt of the file in memory (`iter_prompts` collected): for small files."""
    batch, counts = PromptBatch(), PromptCounts()
    for prompt in iter_prompts(path, fmt, mapping, system_prompt, skip_invalid, limit, counts):
        (batch.invalid if isinstance(prompt, InvalidPrompt) else batch.rows).append(prompt)
    batch.skipped_headers = counts.skipped_headers
    return batch


def iter_prompts(
    path: PromptSource,
    fmt: PromptFormat | None = None,
    mapping: FieldMapping | None = None,
    system_prompt: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
    counts: PromptCounts | None = None,
) -> Iterator[PromptRow | InvalidPrompt]:
    """The file's prompts in file order, read lazily; with `skip_invalid` the bad rows come
    as `InvalidPrompt`s among them, else the first raises `PromptError`. `limit` counts
    valid rows; `counts` (if given) is updated as rows are read. `path`: a file, a folder
    or glob of Parquet parts, or a table in memory (`distill.gen.prompt_sources`)."""
    check_source(path)
    name = source_name(path)
    fmt = fmt or detect_format(path)
    mapping = mapping or FieldMapping()
    counts = counts if counts is not None else PromptCounts()
    seen, id_lines = KeyMap(), KeyMap()
    for line, row in read_rows(path, fmt):
        if limit is not None and counts.rows >= limit:
            break
        where = (name, line)
        try:
            if isinstance(row, RowProblem):
                raise PromptError(*where, row.field, row.problem)
            if fmt == "mmlu" and is_mmlu_header_row(row):
                counts.skipped_headers += 1
                continue
            prompt = _prompt_row(row, fmt, mapping, system_prompt, where, seen)
            first = id_lines.get(prompt.prompt_id) if mapping.id is not None else None
            if first is not None:
                raise PromptError(
                    *where, mapping.id, f"duplicate id {prompt.prompt_id!r}, first on line {first}"
                )
        except PromptError as err:
            if not skip_invalid:
                raise
            raw = row.raw if isinstance(row, RowProblem) else json.dumps(row, default=str)
            counts.invalid += 1
            yield InvalidPrompt(*where, err.field, err.problem, printable(raw))
            continue
        if mapping.id is not None:
            id_lines.put(prompt.prompt_id, line)
        counts.rows += 1
        yield prompt


def _prompt_row(
    row: dict[str, Any],
    fmt: PromptFormat,
    mapping: FieldMapping,
    system_prompt: str | None,
    where: tuple[str, int],
    seen: KeyMap,
) -> PromptRow:
    if fmt == "mmlu":
        user_text, domain, reference = mmlu_prompt(row, *where)
        row = {"prompt": user_text, "domain": domain, "reference": reference}
        mapping = FieldMapping()
    messages = _messages(row, mapping, system_prompt, where)
    domain, reference = _text(row, mapping.domain, where), _text(row, mapping.reference, where)
    return PromptRow(
        prompt_id=_prompt_id(row, mapping, messages, seen, where),
        source_file=where[0],
        source_row=where[1],
        messages=messages,
        domain=domain,
        reference=reference,
    )


__all__ = [
    "MMLU_FIELDS",
    "FieldMapping",
    "InvalidPrompt",
    "PromptBatch",
    "PromptCounts",
    "PromptError",
    "PromptFormat",
    "PromptRow",
    "detect_format",
    "iter_prompts",
    "load_prompts",
]
