"""Refuse a student that can't learn from this dataset, before step one, with every reason.

The manifest records the teacher's tokenizer fingerprints. Token ids are reused as they are
(never re-tokenised), so a student with another vocabulary would silently learn garbage,
and a different logit width would crash mid-step with a shape error (TRL GKD's complaint).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from distill.codec.topk import decode_topk
from distill.schemas import Manifest
from distill.tokenizer_info import describe_tokenizer

_BUILD_HINT = (
    "use a student built on the teacher's tokenizer, e.g. "
    "distill.train.build_random_student(teacher_dir, out_dir)"
)


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
    table: pa.Table | None = None,
) -> None:
    """Raise `StudentMismatch` naming every difference between the student and the teacher.

    Compares tokenizer hash, vocab size (the student's logit width against the teacher's),
    chat template hash and the special tokens the manifest recorded. With `need_topk` (KD)
    the dataset must carry top-k targets. With `table`, its ids are checked to fit the
    student's vocabulary too.
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
                f"{teacher.tokenizer_hash} (different vocabulary or special tokens); {_BUILD_HINT}"
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
    if need_topk:
        problems.extend(_topk_problems(manifest, table))
    if table is not None and table.num_rows:
        problems.extend(_id_range_problems(table, student.vocab_size))
    if problems:
        raise StudentMismatch(problems)


def _topk_problems(manifest: Manifest, table: pa.Table | None) -> list[str]:
    fix = "KD needs the teacher's top-k: regenerate with top_k >= 1, or train with mode='sft'"
    if not manifest.top_k:
        return [f"the manifest's top_k is {manifest.top_k!r}; {fix}"]
    if manifest.params.get("hard_labels"):
        # An API teacher that returned no log-probs (or no token ids to key them by).
        return [
            "the dataset holds hard labels only (its teacher returned no token-id top-k); "
            "train it with mode='sft', or regenerate with a teacher that returns log-probs"
        ]
    if table is None:
        return []
    if not {"topk_ids", "topk_ids_packed"} & set(table.column_names):
        return [f"the dataset has no top-k columns; {fix}"]
    empty = int((decode_topk(table).k_per_token == 0).sum())
    if empty:
        return [f"{empty} response tokens have an empty top-k; {fix}"]
    return []


def _id_range_problems(table: pa.Table, vocab: int) -> list[str]:
    problems = []
    tops: dict[str, int | None] = {}
    for name in ("token_ids", "prompt_token_ids"):
        if name in table.column_names:
            tops[name] = pc.max(pc.list_flatten(table.column(name))).as_py()
    if {"topk_ids", "topk_ids_packed"} & set(table.column_names):
        ids = decode_topk(table).ids  # plain or packed: the codec decides the columns
        tops["topk_ids"] = int(ids.max()) if ids.size else None
    for name, top in tops.items():
        if top is not None and top >= vocab:
            problems.append(
                f"{name}: id {top} is outside the student's vocabulary of {vocab}; "
                "the data was made with a larger vocabulary than the student's"
            )
    return problems
