"""The teacher's rows re-tokenised for a student with another tokenizer, targets aligned.

Each row's prompt and response ids are decoded to bytes through the teacher's vocabulary
(`token_bytes`), the text is tokenised by the student, and every student response token that
starts where a teacher token starts gets that teacher token's stored top-k
(`token_alignment.align_spans`); the others get an empty top-k and train on cross-entropy
only. The result has the record layout training reads (`prompt_token_ids`, `token_ids`, the
plain top-k columns, one entry per *student* token) plus `response_bytes`, so every trainer
and `collate_rows` take it as they are. The top-k ids stay teacher ids: the losses of
`cross_tokenizer_losses` never index the student's logits with them (the hybrid goes
through `CrossVocab.mapping`).

The rows are converted a spooled batch at a time into `OUT/.rows.student.arrow`, then
memory-mapped, as the spool is (`rows`); `AlignmentStats` adds up what was aligned.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from distill.codec import decode_topk
from distill.codec.topk import TopK, plain_topk_columns
from distill.schemas import Manifest
from distill.train.config import CrossTokenizerOptions
from distill.train.rows import STUDENT_ROWS_FILE, open_rows, write_arrow_file
from distill.train.student_check import (
    RowIdStats,
    alignment_report,
    check_cross_student,
    explain_alignment,
)
from distill.train.token_alignment import align_spans, spans_from_lengths
from distill.train.token_bytes import VocabBytes, student_spans, vocab_bytes, vocab_map


@dataclass(frozen=True)
class CrossVocab:
    """The two tokenizers and what joins them: each id's bytes and the one-to-one id map."""

    student_tokenizer: Any
    teacher: VocabBytes
    student: VocabBytes
    mapping: np.ndarray  # [V_teacher] student id, -1 where none is one-to-one

    @classmethod
    def build(
        cls, teacher_tokenizer: Any, student_tokenizer: Any, teacher_vocab: int
    ) -> CrossVocab:
        teacher = vocab_bytes(teacher_tokenizer, teacher_vocab)
        student = vocab_bytes(student_tokenizer)
        return cls(student_tokenizer, teacher, student, vocab_map(teacher, student))


class AlignmentStats(BaseModel):
    """What the conversion aligned, added up over batches (`merged`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: int = 0
    unaligned_rows: int = 0  # rows whose student spans could not be put on the text's bytes
    response_bytes: int = 0
    common_bytes: int = 0  # bytes the student's text shares with the teacher's (a prefix)
    teacher_tokens: int = 0
    teacher_tokens_used: int = 0  # whose top-k became some student token's target
    student_tokens: int = 0
    aligned_tokens: int = 0  # student tokens with a teacher target
    one_to_one_tokens: int = 0  # ... whose teacher token covers exactly the same bytes
    mapped_mass: float = 0.0  # sum over aligned tokens of the teacher's mass on mapped ids

    def merged(self, other: AlignmentStats) -> AlignmentStats:
        return AlignmentStats(
            **{name: getattr(self, name) + getattr(other, name) for name in type(self).model_fields}
        )


def _text(data: bytes) -> str:
    # A byte-level teacher can stop half-way through a character: that tail is replaced,
    # and the common-prefix count below leaves it unaligned.
    return data.decode("utf-8", errors="replace")


def _common_prefix(a: bytes, b: bytes) -> int:
    n = min(len(a), len(b))
    x, y = np.frombuffer(a[:n], dtype=np.uint8), np.frombuffer(b[:n], dtype=np.uint8)
    differ = np.flatnonzero(x != y)
    return int(differ[0]) if differ.size else n


def _gather_topk(topk: TopK, teacher_index: np.ndarray, per_row: np.ndarray) -> TopK:
    """The top-k of teacher tokens `teacher_index` (flat; -1: an empty top-k, tail 1)."""
    known = teacher_index >= 0
    index = np.where(known, teacher_index, 0)
    k_len = np.where(known, topk.k_per_token[index], 0)
    first = (np.cumsum(topk.k_per_token) - topk.k_per_token)[index]
    entries = np.repeat(first, k_len) + (
        np.arange(int(k_len.sum())) - np.repeat(np.cumsum(k_len) - k_len, k_len)
    )
    tail = np.where(known, topk.tail[index], 1.0).astype(np.float32)
    return TopK(topk.ids[entries], topk.logprobs[entries], k_len, tail, per_row)


def convert_batch(table: pa.Table, vocab: CrossVocab) -> tuple[pa.Table, AlignmentStats]:
    """The rows of `table` (teacher ids) as student rows (module docstring) and their stats."""
    prompt_ids = table.column("prompt_token_ids").to_pylist()
    response_ids = table.column("token_ids").to_pylist()
    prompts = [_text(vocab.teacher.decode(np.asarray(ids))[0]) for ids in prompt_ids]
    decoded = [vocab.teacher.decode(np.asarray(ids)) for ids in response_ids]
    texts = [_text(data) for data, _ in decoded]
    tokenizer = vocab.student_tokenizer
    student_prompts = tokenizer(prompts, add_special_tokens=False)["input_ids"]
    responses = student_spans(tokenizer, texts, vocab.student)
    topk = decode_topk(table)
    teacher_first = np.cumsum(topk.tokens_per_row) - topk.tokens_per_row
    stats, targets, one_to_one = AlignmentStats(rows=table.num_rows), [], 0
    for row, ((data, lengths), text, (ids, spans)) in enumerate(
        zip(decoded, texts, responses, strict=True)
    ):
        common = _common_prefix(data, text.encode("utf-8"))
        target = np.full(ids.size, -1, dtype=np.int64)
        if spans is not None:
            aligned = align_spans(spans_from_lengths(lengths), spans, common)
            target = np.where(aligned.aligned, aligned.teacher_of_student + teacher_first[row], -1)
            one_to_one += int(aligned.one_to_one.sum())
        targets.append(target)
        stats = stats.model_copy(
            update={
                "unaligned_rows": stats.unaligned_rows + (spans is None),
                "response_bytes": stats.response_bytes + len(data),
                "common_bytes": stats.common_bytes + common,
            }
        )
    per_row = np.array([ids.size for ids, _ in responses], dtype=np.int64)
    target = np.concatenate(targets) if targets else np.zeros(0, np.int64)
    gathered = _gather_topk(topk, target, per_row)
    mapped = _mapped_mass(gathered, vocab.mapping)
    out = pa.table(
        {
            "record_id": table.column("record_id"),
            "prompt_id": table.column("prompt_id"),
            "prompt_token_ids": pa.array(student_prompts, pa.list_(pa.int32())),
            "token_ids": pa.array([ids.tolist() for ids, _ in responses], pa.list_(pa.int32())),
            **plain_topk_columns(gathered),
            "response_bytes": pa.array([len(t.encode("utf-8")) for t in texts], pa.int64()),
        }
    )
    return out, stats.model_copy(
        update={
            "teacher_tokens": int(topk.tokens_per_row.sum()),
            "teacher_tokens_used": int(np.unique(target[target >= 0]).size),
            "student_tokens": int(per_row.sum()),
            "aligned_tokens": int((target >= 0).sum()),
            "one_to_one_tokens": one_to_one,
            "mapped_mass": mapped,
        }
    )


def _mapped_mass(topk: TopK, mapping: np.ndarray) -> float:
    """The teacher's probability on stored ids with a one-to-one student id, summed."""
    inside = topk.ids < mapping.size
    mapped = inside & (mapping[np.where(inside, topk.ids, 0)] >= 0)
    return float(np.exp(topk.logprobs.astype(np.float64))[mapped].sum())


def student_rows(
    table: pa.Table, vocab: CrossVocab, out_dir: Path
) -> tuple[pa.Table, AlignmentStats]:
    """Every row of `table` converted (same order, one row each) into
    `out_dir/.rows.student.arrow`, memory-mapped, and the alignment's stats."""
    path, stats = Path(out_dir) / STUDENT_ROWS_FILE, AlignmentStats()

    def converted_rows() -> Iterator[pa.Table]:
        nonlocal stats
        for batch in table.to_batches():
            converted, batch_stats = convert_batch(pa.Table.from_batches([batch]), vocab)
            stats = stats.merged(batch_stats)
            yield converted

    if not write_arrow_file(path, converted_rows()):
        raise ValueError(f"{out_dir}: no rows to convert for the student's tokenizer")
    return open_rows(path), stats


def prepare_cross_rows(
    manifest: Manifest,
    table: pa.Table,
    student_tokenizer: Any,
    options: CrossTokenizerOptions,
    *,
    need_topk: bool,
    stats: RowIdStats | None,
    out_dir: Path,
) -> tuple[pa.Table, CrossVocab, dict[str, Any]]:
    """Check, convert and explain: (the student rows, the vocabularies, the alignment report).

    Raises `StudentMismatch` when the teacher's tokenizer can't be found or the top-k is
    missing; prints `explain_alignment`'s lines before training starts. A student tokenizer
    without a chat template is given the teacher's (the prompts it trains on were rendered
    with it), so the saved student renders them the same way.
    """
    teacher_tokenizer = check_cross_student(
        manifest, options.teacher_tokenizer, need_topk=need_topk, stats=stats
    )
    teacher_vocab = manifest.tokenizer.vocab_size if manifest.tokenizer else None
    vocab = CrossVocab.build(teacher_tokenizer, student_tokenizer, teacher_vocab or 0)
    rows, aligned = student_rows(table, vocab, out_dir)
    report = alignment_report(aligned.model_dump(), vocab.mapping, options.loss)
    lines = explain_alignment(report)
    if not getattr(student_tokenizer, "chat_template", None) and teacher_tokenizer.chat_template:
        # The student learns prompts rendered by the teacher's template; saved with it,
        # `apply_chat_template` renders the same text for it at inference.
        student_tokenizer.chat_template = teacher_tokenizer.chat_template
        lines.append("chat template: the student has none; it is saved with the teacher's")
    for line in lines:
        print(line, flush=True)
    return rows, vocab, report
