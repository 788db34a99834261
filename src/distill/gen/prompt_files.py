"""Reading the rows of a prompt file, for `distill gen` and `distill score`, defensively.

Input files come from anywhere: a byte-order mark, CRLF line ends, bytes that are not UTF-8,
a line too long for the `csv` module's default limit, a CSV row with more or fewer cells
than its header, a JSON line nested too deep or with a 5,000-digit number. None of these may
stop a run with a traceback or slip through as a wrong prompt. A file-level problem (an
unreadable Parquet file, broken CSV quoting) raises `PromptError`; a row-level one is
yielded as a `RowProblem` naming the field, which `load_prompts` raises or, with
`skip_invalid`, sets aside. Text is decoded with `surrogateescape`, so a bad byte inside a
value is caught by `text_problem` and named by its field rather than its line.

Every format streams: JSONL and CSV a line at a time, Parquet (one file, or the parts of a
Hub-style folder or a glob, `distill.gen.prompt_sources`), saved `datasets` directories and
in-memory tables `READ_BATCH_ROWS` rows at a time, so memory does not grow with the source.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from distill.gen.prompt_sources import PromptSource, arrow_batches, parquet_parts
from distill.input_rows import PromptError, printable

PromptFormat = Literal["jsonl", "parquet", "csv", "hf", "mmlu", "arrow"]
BOM = "\ufeff"
# The csv module refuses a cell over 128 KiB by default; long-context prompts are longer.
CSV_FIELD_LIMIT = 1 << 30
READ_BATCH_ROWS = 1024  # rows decoded at a time from Parquet and `datasets` directories


@dataclass(frozen=True)
class RowProblem:
    """A row that could not be read as a mapping of fields (or has a bad cell)."""

    field: str
    problem: str
    raw: str


def read_rows(
    source: PromptSource, fmt: PromptFormat
) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    """(line or row number, the row's fields) for each row, or a `RowProblem`. Rows of a
    source made of several Parquet parts are numbered 1.. across the parts, in name order."""
    if fmt == "arrow":
        rows = (
            row for batch in arrow_batches(source, READ_BATCH_ROWS) for row in batch.to_pylist()
        )
        yield from enumerate(rows, start=1)
        return
    path = Path(source)  # type: ignore[arg-type]
    if fmt in ("jsonl", "mmlu"):
        yield from _jsonl_rows(path)
    elif fmt == "csv":
        yield from _csv_rows(path)
    elif fmt == "parquet":
        parts = parquet_parts(path) or [path]
        yield from enumerate((row for part in parts for row in _parquet_rows(part)), start=1)
    elif fmt == "hf":
        yield from enumerate(_hf_rows(path), start=1)


def _jsonl_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    # Binary lines split on b"\n" alone: line numbers agree with editors and `wc -l`.
    with path.open("rb") as fh:
        for line_no, data in enumerate(fh, start=1):
            text = data.decode("utf-8", "surrogateescape").rstrip("\r\n").removeprefix(BOM)
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except (ValueError, RecursionError):  # broken JSON, a 5,000-digit int, deep nesting
                row = None
            if isinstance(row, dict):
                yield line_no, row
            else:
                yield line_no, RowProblem("<line>", "not a JSON object", printable(text))


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, Any] | RowProblem]]:
    csv.field_size_limit(max(csv.field_size_limit(), CSV_FIELD_LIMIT))
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    with path.open(encoding="utf-8-sig", errors="surrogateescape", newline="") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        try:
            for row in reader:
                yield reader.line_num, _csv_row(row, len(reader.fieldnames or []))
        except csv.Error as err:
            problem = f"not valid CSV ({err})"
            raise PromptError(str(path), reader.line_num, "<line>", problem) from None


def _csv_row(row: dict[str | None, Any], width: int) -> dict[str, Any] | RowProblem:
    # DictReader puts extra cells under the key None and fills missing ones with None:
    # either way the cells no longer line up with the header (an unquoted delimiter).
    extra = row.pop(None, None) or []
    cells = sum(value is not None for value in row.values()) + len(extra)
    if cells != width:
        raw = printable(json.dumps({**row, "<extra cells>": extra}, ensure_ascii=False))
        return RowProblem("<line>", f"{cells} cells, the header has {width}", raw)
    return row  # type: ignore[return-value]


def _parquet_rows(path: Path) -> Iterator[dict[str, Any]]:
    """The rows, one batch of `READ_BATCH_ROWS` decoded at a time (row group by row group)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=READ_BATCH_ROWS)
        for batch in batches:
            yield from batch.to_pylist()
    except (pa.ArrowException, ValueError, OSError) as err:
        raise PromptError(str(path), 0, "<file>", f"not a readable Parquet file ({err})") from None


def _hf_rows(path: Path) -> Iterator[dict[str, Any]]:
    """A saved `datasets` directory's rows: memory-mapped Arrow, a batch at a time."""
    from datasets import load_from_disk

    dataset = load_from_disk(str(path)).with_format("arrow")  # type: ignore[union-attr]
    for table in dataset.iter(batch_size=READ_BATCH_ROWS):
        yield from table.to_pylist()  # type: ignore[union-attr]
