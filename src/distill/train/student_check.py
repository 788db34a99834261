"""Refuse a student that can't learn from this dataset, before step one, with every reason.

A student on another tokenizer is refused too, unless the run asks for cross-tokenizer KD;
then `check_cross_student` finds the teacher's tokenizer and `explain_alignment` says what
the conversion (`cross_rows`) aligned and how much of the teacher's mass it could map.

The manifest records the teacher's tokenizer fingerprints. Token ids are reused as they are
(never re-tokenised), so a student with another vocabulary would silently learn garbage,
and a different logit width would crash mid-step with a shape error (TRL GKD's complaint).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from distill.codec.topk import decode_topk
from distill.schemas import Manifest
from distill.tokenizer_info import describe_tokenizer

_BUILD_HINT = (
    "use a student built on the teacher's tokenizer, e.g. "
    "distill.train.build_random_student(teacher_dir, out_dir)"
)


# The id columns checked against the student's vocabulary, in the order problems are named.
ID_COLUMNS = ("token_ids", "prompt_token_ids", "topk_ids")


class RowIdStats(BaseModel):
    """What the check reads from the rows, gathered a batch at a time (`row_id_stats`, then
    `merged`), so a dataset larger than memory is checked in one streamed pass."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rows: int = 0
    has_topk: bool = False
    empty_topk_tokens: int = 0
    max_ids: dict[str, int] = {}  # column -> its largest id ("topk_ids" for either codec)

    def merged(self, other: RowIdStats) -> RowIdStats:
        names = [n for n in ID_COLUMNS if n in self.max_ids or n in other.max_ids]
        return RowIdStats(
            rows=self.rows + other.rows,
            has_topk=self.has_topk or other.has_topk,
            empty_topk_tokens=self.empty_topk_tokens + other.empty_topk_tokens,
            max_ids={n: max(self.max_ids.get(n, -1), other.max_ids.get(n, -1)) for n in names},
        )


def row_id_stats(table: pa.Table) -> RowIdStats:
    """The largest id of each id column and the count of tokens with an empty top-k."""
    tops: dict[str, int] = {}
    for name in ("token_ids", "prompt_token_ids"):
        if name in table.column_names:
            top = pc.max(pc.list_flatten(table.column(name))).as_py()
            if top is not None:
                tops[name] = int(top)
    has_topk = bool({"topk_ids", "topk_ids_packed"} & set(table.column_names))
    empty = 0
    if has_topk and table.num_rows:
        topk = decode_topk(table)  # plain or packed: the codec decides the columns
        empty = int((topk.k_per_token == 0).sum())
        if topk.ids.size:
            tops["topk_ids"] = int(topk.ids.max())
    return RowIdStats(rows=table.num_rows, has_topk=has_topk, empty_topk_tokens=empty, max_ids=tops)


class StudentMismatch(ValueError):
    """The student and the dataset disagree; `problems` lists each difference with its fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"the student can't be trained on this dataset:\n{lines}")


def check_student_compat(
    manifest: Manifest,
    tokenizer: Any,
    model_config: Any,
    *,
    need_topk: bool = False,
    table: pa.Table | RowIdStats | None = None,
) -> None:
    """Raise `StudentMismatch` naming every difference between the student and the teacher.

    Compares tokenizer hash, vocab size (the student's logit width against the teacher's),
    chat template hash and the special tokens the manifest recorded. With `need_topk` (KD)
    the dataset must carry top-k targets. With `table` (the rows, or their `RowIdStats`),
    its ids are checked to fit the student's vocabulary too.
    """
    problems: list[str] = []
    teacher = manifest.tokenizer
    student = describe_tokenizer(tokenizer, model_config)
    if teacher is None:
        problems.append(
            "the manifest records no teacher tokenizer, so compatibility can't be checked; "
            "regenerate the dataset with a distill teacher backend (it writes manifest.tokenizer)"
        )
    else:
        if student.tokenizer_hash != teacher.tokenizer_hash:
            problems.append(
                f"tokenizer hash: student {student.tokenizer_hash} != teacher "
                f"{teacher.tokenizer_hash} (different vocabulary or special tokens); "
                f"{_BUILD_HINT}, or distil across tokenizers with cross_tokenizer "
                "(--cross-tokenizer uld|hybrid)"
            )
        if student.vocab_size != teacher.vocab_size:
            problems.append(
                f"vocab size: student logits have {student.vocab_size} entries, the teacher "
                f"{teacher.vocab_size}; resize with model.resize_token_embeddings("
                f"{teacher.vocab_size}) or {_BUILD_HINT}"
            )
        if student.chat_template_hash != teacher.chat_template_hash:
            problems.append(
                f"chat template hash: student {student.chat_template_hash} != teacher "
                f"{teacher.chat_template_hash}; the prompts were rendered with the teacher's "
                "template, so set tokenizer.chat_template to it before training and saving"
            )
        for name, expected in sorted(teacher.special_tokens.items()):
            got = student.special_tokens.get(name)
            if got != expected:
                problems.append(
                    f"special token {name}: student {got!r} != teacher {expected!r}; "
                    f"set tokenizer.{name} = {expected!r}"
                )
    stats = row_id_stats(table) if isinstance(table, pa.Table) else table
    if need_topk:
        problems.extend(_topk_problems(manifest, stats))
    if stats is not None and stats.rows:
        problems.extend(_id_range_problems(stats, student.vocab_size))
    if problems:
        raise StudentMismatch(problems)


def _topk_problems(manifest: Manifest, stats: RowIdStats | None) -> list[str]:
    fix = "KD needs the teacher's top-k: regenerate with top_k >= 1, or train with mode='sft'"
    if not manifest.top_k:
        return [f"the manifest's top_k is {manifest.top_k!r}; {fix}"]
    if manifest.params.get("hard_labels"):
        # An API teacher that returned no log-probs (or no token ids to key them by).
        return [
            "the dataset holds hard labels only (its teacher returned no token-id top-k); "
            "train it with mode='sft', or regenerate with a teacher that returns log-probs"
        ]
    if stats is None:
        return []
    if not stats.has_topk:
        return [f"the dataset has no top-k columns; {fix}"]
    if stats.empty_topk_tokens:
        return [f"{stats.empty_topk_tokens} response tokens have an empty top-k; {fix}"]
    return []


def _id_range_problems(stats: RowIdStats, vocab: int) -> list[str]:
    return [
        f"{name}: id {top} is outside the student's vocabulary of {vocab}; "
        "the data was made with a larger vocabulary than the student's"
        for name, top in stats.max_ids.items()
        if top >= vocab
    ]


def teacher_tokenizer_for(manifest: Manifest, path: Path | None) -> tuple[Any, list[str]]:
    """The teacher's tokenizer (from `path`, else the embedded teacher's when the manifest
    names it) and the problems found; its fingerprint must be the manifest's."""
    from transformers import AutoTokenizer

    if manifest.tokenizer is None:
        return None, ["the manifest records no teacher tokenizer, so its ids can't be decoded"]
    if path is None:
        from distill.teachers.embedded import EMBEDDED_MODEL_ID, embedded_teacher_dir

        if not any(t.model_id.startswith(EMBEDDED_MODEL_ID) for t in manifest.teachers):
            names = ", ".join(t.model_id for t in manifest.teachers) or "none"
            return None, [
                f"the teacher's tokenizer is needed to decode its token ids (teachers: {names}); "
                "pass cross_tokenizer.teacher_tokenizer (--teacher-tokenizer DIR)"
            ]
        path = embedded_teacher_dir()
    tokenizer = AutoTokenizer.from_pretrained(path)
    found = describe_tokenizer(tokenizer).tokenizer_hash
    if found != manifest.tokenizer.tokenizer_hash:
        return None, [
            f"teacher tokenizer {path}: hash {found} != the manifest's "
            f"{manifest.tokenizer.tokenizer_hash}; give the tokenizer that generated the data"
        ]
    return tokenizer, []


def check_cross_student(
    manifest: Manifest,
    teacher_tokenizer: Path | None,
    *,
    need_topk: bool,
    stats: RowIdStats | None,
) -> Any:
    """The teacher's tokenizer for a cross-tokenizer run; `StudentMismatch` naming every
    problem (no teacher tokenizer to decode with, a missing top-k)."""
    tokenizer, problems = teacher_tokenizer_for(manifest, teacher_tokenizer)
    if need_topk:
        problems.extend(_topk_problems(manifest, stats))
    if problems:
        raise StudentMismatch(problems)
    return tokenizer


def alignment_report(
    stats: Mapping[str, int | float], mapping: np.ndarray, loss: str
) -> dict[str, Any]:
    """What the conversion aligned (`cross_rows.AlignmentStats`, dumped) with its shares, as
    recorded in metrics.json and lineage.json."""

    def share(part: float, whole: float) -> float:
        return round(part / whole, 4) if whole else 0.0

    return {
        "loss": loss,
        **stats,
        "teacher_vocab": int(mapping.size),
        "one_to_one_vocab": int((mapping >= 0).sum()),
        "byte_agreement": share(stats["common_bytes"], stats["response_bytes"]),
        "span_coverage": share(stats["aligned_tokens"], stats["student_tokens"]),
        "one_to_one_span_share": share(stats["one_to_one_tokens"], stats["student_tokens"]),
        "teacher_topk_used": share(stats["teacher_tokens_used"], stats["teacher_tokens"]),
        "mapped_mass_share": share(stats["mapped_mass"], stats["aligned_tokens"]),
    }


def explain_alignment(report: dict[str, Any]) -> list[str]:
    """`alignment_report` in sentences, printed before training."""
    r = report
    return [
        f"cross-tokenizer ({r['loss']}): {r['one_to_one_vocab']:,} of the teacher's "
        f"{r['teacher_vocab']:,} ids map one-to-one to a student id (same bytes)",
        f"text: {r['rows']:,} rows re-tokenised; the student's text is the teacher's for "
        f"{r['byte_agreement']:.1%} of {r['response_bytes']:,} response bytes "
        f"({r['unaligned_rows']} rows could not be put on bytes)",
        f"spans: {r['span_coverage']:.1%} of {r['student_tokens']:,} student tokens start where "
        f"a teacher token starts and take its top-k ({r['one_to_one_span_share']:.1%} cover the "
        "same bytes); the rest train on cross-entropy only; "
        f"{r['teacher_topk_used']:.1%} of the teacher's {r['teacher_tokens']:,} top-k rows used",
        f"mass: {r['mapped_mass_share']:.1%} of the teacher's probability at aligned tokens is "
        "on ids that map one-to-one (the hybrid's exact-KL part; ULD takes the rest)",
    ]
