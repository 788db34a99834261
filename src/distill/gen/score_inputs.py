"""What `distill score` reads: (prompt, response) rows from a prompt file with a response
column, or from an existing distill dataset, and the token ids the teacher is forced through.

Tokenisation: teacher forcing needs ids, so a text response is tokenised once here (no
special tokens added) and the teacher's EOS is appended, so a record ends like a `gen`
record with finish_reason "stop". A distill dataset made with the same tokenizer keeps its
stored token ids (and finish reasons) unchanged.

Both sources stream: a prompt file a row at a time (its response column read in step with
its prompts), a dataset a batch at a time (`distill.store.shard_batches`), so memory does not
grow with the source. `scan_responses` checks a whole prompt file in one streamed pass
before the teacher loads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ConfigDict

from distill.gen.prompt_files import RowProblem, read_rows
from distill.gen.prompt_sources import PromptSource, check_source, source_name
from distill.gen.prompts import (
    FieldMapping,
    PromptError,
    PromptFormat,
    PromptRow,
    detect_format,
    iter_prompts,
)
from distill.input_rows import text_problem
from distill.schemas import Manifest
from distill.store import load_manifest, shard_batches, verify_shards


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


def _responses(
    source: PromptSource, fmt: PromptFormat, mapping: ScoreMapping
) -> Iterator[tuple[int, str]]:
    """(line, response text) of each row; a bad row raises `PromptError`."""
    name = source_name(source)
    for line, raw in read_rows(source, fmt):
        if isinstance(raw, RowProblem):
            raise PromptError(name, line, raw.field, raw.problem)
        if mapping.response not in raw or raw[mapping.response] is None:
            raise PromptError(name, line, mapping.response, "missing")
        text = raw[mapping.response]
        if text_problem(text) is not None or not text.strip():
            raise PromptError(name, line, mapping.response, "empty or not text")
        yield line, text


def _resolved(
    source: PromptSource, fmt: PromptFormat | None, mapping: ScoreMapping | None
) -> tuple[PromptSource, PromptFormat, ScoreMapping, FieldMapping]:
    check_source(source)
    mapping = mapping or ScoreMapping()
    prompt_mapping = FieldMapping(**mapping.model_dump(exclude={"response"}))
    return source, fmt or detect_format(source), mapping, prompt_mapping


def scan_responses(
    source: PromptSource, fmt: PromptFormat | None = None, mapping: ScoreMapping | None = None
) -> int:
    """The number of rows of a prompt file with a response column, read streamed: every
    response first, then every prompt; the first bad row raises `PromptError`."""
    source, fmt, mapping, prompt_mapping = _resolved(source, fmt, mapping)
    for _ in _responses(source, fmt, mapping):
        pass
    return sum(1 for _ in iter_prompts(source, fmt, prompt_mapping))


def iter_responses(
    source: PromptSource, fmt: PromptFormat | None = None, mapping: ScoreMapping | None = None
) -> Iterator[ScoreItem]:
    """The rows of a prompt file with a response column, read lazily: the prompts and the
    responses are two streams over the file, matched by line."""
    source, fmt, mapping, prompt_mapping = _resolved(source, fmt, mapping)
    responses = _responses(source, fmt, mapping)
    for row in iter_prompts(source, fmt, prompt_mapping):
        line, text = next(responses)
        while line < row.source_row:  # rows the prompt reader skipped (MMLU headers)
            line, text = next(responses)
        yield ScoreItem(row, 0, text)


def load_responses(
    source: PromptSource, fmt: PromptFormat | None = None, mapping: ScoreMapping | None = None
) -> list[ScoreItem]:
    """`iter_responses` in memory, after `scan_responses`: for small files."""
    scan_responses(source, fmt, mapping)
    return list(iter_responses(source, fmt, mapping))


DATASET_COLUMNS = [
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


def load_dataset_responses(source: Path, tokenizer_hash: str) -> Iterator[ScoreItem]:
    """Rows of a distill dataset, a batch at a time; its token ids are kept if the tokenizer
    is the same. Every shard is checked against the manifest here, before the first row
    (a damaged dataset fails before anything is scored)."""
    manifest = load_manifest(source)
    verify_shards(source, manifest)
    same_tokenizer = manifest.tokenizer is not None and (
        manifest.tokenizer.tokenizer_hash == tokenizer_hash
    )
    return _dataset_items(source, manifest, same_tokenizer)


def _dataset_items(source: Path, manifest: Manifest, same_tokenizer: bool) -> Iterator[ScoreItem]:
    # The shards were hashed above: read the manifest's shards without hashing them again.
    batches = (
        batch
        for shard in manifest.shards
        for batch in shard_batches(source / shard.file, None, DATASET_COLUMNS)
    )
    for batch in batches:
        for rec in batch.to_pylist():
            row = PromptRow(
                prompt_id=rec["prompt_id"],
                source_file=rec["source_file"],
                source_row=rec["source_row"],
                messages=[{"role": m["role"], "content": m["content"]} for m in rec["messages"]],
                domain=rec["domain"],
                reference=rec["reference"],
            )
            ids = list(rec["token_ids"]) if same_tokenizer and rec["token_ids"] else None
            yield ScoreItem(
                row, rec["sample_index"], rec["response_text"], ids, rec["finish_reason"]
            )


def response_ids(teacher: Any, item: ScoreItem) -> list[int]:
    """The ids the teacher is forced through: stored ids, or the text tokenised once + EOS."""
    if item.token_ids is not None:
        return item.token_ids
    ids = list(teacher.tokenizer(item.response_text, add_special_tokens=False)["input_ids"])
    eos = teacher.tokenizer.eos_token_id
    if item.finish_reason == "stop" and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    return ids
