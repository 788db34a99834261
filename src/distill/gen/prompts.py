"""Prompt sources: JSONL, Parquet, CSV, saved HF `datasets` and the built-in MMLU format.

Every row becomes a `PromptRow` with chat messages. A bad row (broken JSON, a missing
field, an empty prompt) raises `PromptError` naming file, line and field; with
`skip_invalid` it is returned as an `InvalidPrompt` instead, so the run goes on and the
row is written to the rejects file with its reason.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from distill.gen.mmlu import MMLU_FIELDS, is_mmlu_header_row, mmlu_prompt

PromptFormat = Literal["jsonl", "parquet", "csv", "hf", "mmlu"]


class PromptError(ValueError):
    """A prompt row that can't be used; the message names file, line and field."""

    def __init__(self, file: str, line: int, field: str, problem: str) -> None:
        super().__init__(f"{file}:{line}: field '{field}': {problem}")
        self.file, self.line, self.field, self.problem = file, line, field, problem


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


def detect_format(path: Path) -> PromptFormat:
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


def _raw_rows(path: Path, fmt: PromptFormat) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(row number, parsed row) or (row number, raw text) for a line that isn't JSON."""
    if fmt in ("jsonl", "mmlu"):
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield line_no, line.rstrip("\n")
                    continue
                yield line_no, row if isinstance(row, dict) else line.rstrip("\n")
    elif fmt == "csv":
        with path.open(encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter="\t" if path.suffix == ".tsv" else ",")
            for row in reader:
                yield reader.line_num, dict(row)
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        for i, row in enumerate(pq.read_table(path).to_pylist(), start=1):
            yield i, row
    elif fmt == "hf":
        from datasets import load_from_disk

        for i, row in enumerate(load_from_disk(str(path)), start=1):  # type: ignore[arg-type]
            yield i, dict(row)


def _text(row: dict[str, Any], name: str | None) -> str | None:
    if name is None or row.get(name) is None:
        return None
    return str(row[name])


def _messages(
    row: dict[str, Any], mapping: FieldMapping, system: str | None, where: tuple
) -> list[dict[str, str]]:
    file, line = where
    if mapping.messages is not None:
        chat = row.get(mapping.messages)
        if not isinstance(chat, list) or not chat:
            raise PromptError(file, line, mapping.messages, "missing or not a non-empty list")
        messages = []
        for turn in chat:
            if not isinstance(turn, dict) or not str(turn.get("content", "")).strip():
                raise PromptError(file, line, mapping.messages, "a turn has no content")
            role = str(turn.get("role", "user"))
            messages.append({"role": role, "content": str(turn["content"])})
    else:
        if mapping.prompt not in row:
            raise PromptError(file, line, mapping.prompt, "missing")
        text = _text(row, mapping.prompt)
        if text is None or not text.strip():
            raise PromptError(file, line, mapping.prompt, "empty prompt")
        messages = [{"role": "user", "content": text}]
    row_system = _text(row, mapping.system) or system
    if row_system and messages[0]["role"] != "system":
        messages.insert(0, {"role": "system", "content": row_system})
    return messages


def _prompt_id(row: dict[str, Any], mapping: FieldMapping, messages: list, seen: Counter) -> str:
    # Content hash + occurrence number: stable when rows are inserted or reordered
    # (so resume still finds its records), yet distinct for repeated prompts, which
    # curation, not generation, is the place to deduplicate.
    user_id = _text(row, mapping.id)
    if user_id:
        return user_id
    canonical = json.dumps(messages, sort_keys=True, ensure_ascii=False)
    seen[canonical] += 1
    digest = hashlib.sha256(f"{canonical}\x1f{seen[canonical]}".encode()).hexdigest()
    return digest[:16]


def load_prompts(
    path: Path,
    fmt: PromptFormat | None = None,
    mapping: FieldMapping | None = None,
    system_prompt: str | None = None,
    skip_invalid: bool = False,
    limit: int | None = None,
) -> PromptBatch:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: prompt file not found")
    fmt = fmt or detect_format(path)
    mapping = mapping or FieldMapping()
    batch, seen = PromptBatch(), Counter()
    for line, row in _raw_rows(path, fmt):
        if limit is not None and len(batch.rows) >= limit:
            break
        try:
            if isinstance(row, str):
                raise PromptError(str(path), line, "<line>", "not a JSON object")
            if fmt == "mmlu":
                if is_mmlu_header_row(row):
                    batch.skipped_headers += 1
                    continue
                user_text, domain, reference = mmlu_prompt(row, str(path), line)
                row = {"prompt": user_text, "domain": domain, "reference": reference}
                row_mapping = FieldMapping()
            else:
                row_mapping = mapping
            messages = _messages(row, row_mapping, system_prompt, (str(path), line))
        except PromptError as err:
            if not skip_invalid:
                raise
            raw = row if isinstance(row, str) else json.dumps(row, default=str)
            batch.invalid.append(InvalidPrompt(str(path), line, err.field, err.problem, raw))
            continue
        batch.rows.append(
            PromptRow(
                prompt_id=_prompt_id(row, row_mapping, messages, seen),
                source_file=str(path),
                source_row=line,
                messages=messages,
                domain=_text(row, row_mapping.domain),
                reference=_text(row, row_mapping.reference),
            )
        )
    return batch


__all__ = [
    "MMLU_FIELDS",
    "FieldMapping",
    "InvalidPrompt",
    "PromptBatch",
    "PromptError",
    "PromptFormat",
    "PromptRow",
    "detect_format",
    "load_prompts",
]
