"""Benchmark decontamination: drop rows sharing a word n-gram with a benchmark item.

The test is the 13-gram overlap of GPT-3 (Brown et al. 2020) and Llama (Touvron et al.
2023): text is normalised — casefolded, punctuation stripped, whitespace collapsed, i.e.
the `\\w+` words joined by one space — and a row is contaminated when one of its word
`ngram`-grams is also an n-gram of some benchmark item. Benchmark items shorter than
`ngram` words but at least `min_words` long must appear whole; shorter ones (a one-word
option, "True") would match far too much and are skipped (counted in the summary).

Benchmark files are the user's: `.jsonl` / `.json` lines are read for `fields` (default:
the question and the options of MMLU-like files: `choices`, `options` or `answer_a`..`d`);
every value, and every element of a list value, is a separate segment, so no n-gram spans
the end of the question and the first option. Any other file is plain text, one item a
line. The n-grams of every file are hashed once into one dict (hash -> first file and
line), so checking a row costs one dict lookup per n-gram of the row.

Each dropped row names the first match: benchmark file, 1-based line, the matched n-gram
as normalised text and the field (`prompt` = last user message, or `response`). The
step's summary counts, per benchmark file, the rows dropped and the distinct benchmark
lines they hit; the runner copies it into the manifest's `stats["contamination"]`.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, PositiveInt

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason, RowLocal
from distill.curate.text import last_user_message

_WORD = re.compile(r"\w+")

MMLU_FIELDS = ("question", "choices", "options", "answer_a", "answer_b", "answer_c", "answer_d")


def normalized_words(text: str) -> list[str]:
    """Casefolded words with punctuation and whitespace gone."""
    return _WORD.findall(text.casefold())


def ngram_key(words: list[str]) -> int:
    # Python's str hash: fast, and the index only lives inside one process.
    return hash(" ".join(words))


def segments(line: str, fields: tuple[str, ...], jsonl: bool) -> list[str]:
    """The texts of one benchmark line: each field value / list element, or the line."""
    if not jsonl:
        return [line]
    row = json.loads(line)
    found: list[str] = []
    for name in fields:
        value = row.get(name) if isinstance(row, dict) else None
        if isinstance(value, list):
            found.extend(str(item) for item in value if item is not None)
        elif value is not None:
            found.append(str(value))
    return found


class BenchmarkIndex:
    """Hashed word n-grams of benchmark files -> (file, line) of their first occurrence."""

    def __init__(self, ngram: int, min_words: int) -> None:
        self.ngram, self.min_words = ngram, min_words
        self.grams: dict[int, tuple[str, int]] = {}
        self.lengths: set[int] = set()  # n-gram lengths present (ngram, plus short items)
        self.skipped: dict[str, int] = defaultdict(int)  # file -> items too short to use

    def add_file(self, path: Path, fields: tuple[str, ...]) -> None:
        jsonl = path.suffix.lower() in (".jsonl", ".json")
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    texts = segments(line, fields, jsonl)
                except json.JSONDecodeError as exc:
                    raise ValueError(f"{path}:{number}: not valid JSON: {exc}") from exc
                for text in texts:
                    self.add_item(normalized_words(text), str(path), number)

    def add_item(self, words: list[str], source: str, line: int) -> None:
        n = self.ngram
        if len(words) < n:
            if len(words) < self.min_words:
                if words:
                    self.skipped[source] += 1
                return
            n = len(words)
        self.lengths.add(n)
        for start in range(len(words) - n + 1):
            self.grams.setdefault(ngram_key(words[start : start + n]), (source, line))

    def first_match(self, text: str) -> tuple[str, int, str] | None:
        """(file, line, matched n-gram) of the first benchmark n-gram found in `text`."""
        words = normalized_words(text)
        for n in sorted(self.lengths, reverse=True):
            for start in range(len(words) - n + 1):
                hit = self.grams.get(ngram_key(words[start : start + n]))
                if hit is not None:
                    return hit[0], hit[1], " ".join(words[start : start + n])
        return None


@lru_cache(maxsize=4)
def _cached_index(
    stamps: tuple[tuple[str, int, int], ...], fields: tuple[str, ...], ngram: int, min_words: int
) -> BenchmarkIndex:
    index = BenchmarkIndex(ngram, min(min_words, ngram))
    for name, _mtime, _size in stamps:
        index.add_file(Path(name), fields)
    return index


class Decontaminate(RowLocal, DatasetStep):
    """Drop rows whose prompt or response shares a word n-gram with a benchmark item."""

    name: Literal["decontaminate"] = "decontaminate"
    columns: ClassVar[tuple[str, ...]] = ("messages", "response_text")

    benchmarks: list[str] = Field(
        min_length=1, description="benchmark files: .jsonl/.json (read `fields`) or plain text"
    )
    field: Literal["prompt", "response", "both"] = Field(
        "both", description="check the last user message, the response, or each of them"
    )
    ngram: PositiveInt = Field(13, description="n-gram length in words (GPT-3 / Llama: 13)")
    min_words: PositiveInt = Field(
        8, description="benchmark items shorter than `ngram` must match whole; below this, skip"
    )
    fields: list[str] = Field(
        default_factory=lambda: list(MMLU_FIELDS),
        min_length=1,
        description="JSONL keys holding benchmark text; a list value gives one item per element",
    )

    def build_index(self) -> BenchmarkIndex:
        """The index of the benchmark files, read once per (files, their mtimes, settings)."""
        stamps = []
        for name in self.benchmarks:
            path = Path(name)
            if not path.is_file():
                raise FileNotFoundError(f"decontaminate: benchmark file {path} not found")
            stat = path.stat()
            stamps.append((name, stat.st_mtime_ns, stat.st_size))
        return _cached_index(tuple(stamps), tuple(self.fields), self.ngram, self.min_words)

    def select(self, columns: dict[str, list[Any]], num_rows: int) -> Decisions:
        index = self.build_index()
        checked = ("prompt", "response") if self.field == "both" else (self.field,)
        decisions: Decisions = []
        for messages, response in zip(columns["messages"], columns["response_text"], strict=True):
            drop = None
            for field in checked:
                text = last_user_message(messages) if field == "prompt" else response or ""
                match = index.first_match(text)
                if match is not None:
                    benchmark, line, ngram = match
                    details = {"benchmark": benchmark, "line": line, "ngram": ngram, "field": field}
                    drop = Drop(RejectReason.CONTAMINATED, details)
                    break
            decisions.append(drop)
        return decisions

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        rows: dict[str, int] = defaultdict(int)
        lines: dict[str, set[int]] = defaultdict(set)
        for decision in decisions:
            if decision is not None:
                rows[decision.details["benchmark"]] += 1
                lines[decision.details["benchmark"]].add(decision.details["line"])
        skipped = self.build_index().skipped  # cached: the index select() used
        per_file = {
            name: {
                "rows": rows.get(name, 0),
                "benchmark_lines": len(lines.get(name, ())),
                "short_items_skipped": skipped.get(name, 0),
            }
            for name in self.benchmarks
        }
        return {"contamination": per_file, "stats": {"contamination": per_file}}
