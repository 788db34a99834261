"""Per prompt, keep the best sample(s) across teachers (and samples): `select_teacher`.

A run with several teachers (`distill gen --teacher A --teacher B`) stores every
teacher's samples of a prompt side by side, keyed by (prompt, sample, teacher). A
student should usually learn one answer per prompt, and from the teacher that got it
right. The policies:

- `correct`: rows whose answer passes the multiple-choice check first (a row without a
  letter reference counts as passing, so it falls back to confidence), then the most
  confident of those; ties go to the row that comes first.
- `most_confident`: the highest mean log-prob of the sampled tokens, whatever the answer.

Confidence is the mean `sampled_logprob` of the response: the teacher's own probability
of the text it wrote, comparable across teachers that share a tokenizer. Every dropped
row names the row kept in its place, that row's teacher and both confidences, so the
choice can be audited row by row.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, PositiveInt

from distill.curate.base import DatasetStep, Decisions, Drop, RejectReason
from distill.curate.dedup.keep_policy import rows_passing_mcq
from distill.curate.signals import mean_sampled_logprob


def rank_rows(
    keep: str, confidence: np.ndarray, correct: list[bool] | None
) -> list[tuple[Any, ...]]:
    """A sort key per row: smaller is better under the `keep` policy."""
    if keep == "correct":
        assert correct is not None
        return [(not ok, -c, i) for i, (ok, c) in enumerate(zip(correct, confidence, strict=True))]
    return [(-c, i) for i, c in enumerate(confidence)]


class SelectTeacher(DatasetStep):
    """Keep `per_prompt` rows per prompt: the right teacher's, or the most confident."""

    name: Literal["select_teacher"] = "select_teacher"
    columns: ClassVar[tuple[str, ...]] = (
        "record_id",
        "prompt_id",
        "teacher_id",
        "response_text",
        "reference",
    )

    keep: Literal["correct", "most_confident"] = Field(
        "correct", description="right answers first (then confidence), or confidence alone"
    )
    per_prompt: PositiveInt = Field(1, description="rows kept per prompt")

    def read_columns(self, codec: Any) -> list[str]:
        return [*self.columns, "sampled_logprob"]

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """record_id, prompt_id, teacher_id, the confidence and (`correct`) the MCQ check."""
        # Read through Arrow: only the one float list column, never the top-k payload.
        confidence = mean_sampled_logprob(batch.column("sampled_logprob"))
        # A response with no tokens has no confidence; it ranks last, never first.
        confidence = np.nan_to_num(confidence, nan=-np.inf)
        keys = batch.select(["record_id", "prompt_id", "teacher_id"])
        keys = keys.append_column("confidence", pa.array(confidence, pa.float64()))
        if self.keep == "correct":
            columns = {
                name: batch.column(name).to_pylist() for name in ("response_text", "reference")
            }
            keys = keys.append_column("correct", pa.array(rows_passing_mcq(columns), pa.bool_()))
        return keys

    def decide(self, table: pa.Table) -> Decisions:
        return self.decide_keys(self.keys(table))

    def decide_keys(self, keys: pa.Table) -> Decisions:
        names = ("record_id", "prompt_id", "teacher_id")
        columns = {name: keys.column(name).to_pylist() for name in names}
        confidence = keys.column("confidence").to_numpy()
        correct = keys.column("correct").to_pylist() if self.keep == "correct" else None
        return self.choose(columns, confidence, correct)

    def choose(
        self,
        columns: dict[str, list[Any]],
        confidence: np.ndarray,
        correct: list[bool] | None = None,
    ) -> Decisions:
        if self.keep == "correct" and correct is None:
            correct = rows_passing_mcq(columns)
        keys = rank_rows(self.keep, confidence, correct)
        by_prompt: dict[Any, list[int]] = defaultdict(list)
        for index, prompt_id in enumerate(columns["prompt_id"]):
            by_prompt[prompt_id].append(index)
        decisions: Decisions = [None] * len(keys)
        for rows in by_prompt.values():
            ranked = sorted(rows, key=keys.__getitem__)
            best = ranked[0]
            for index in ranked[self.per_prompt :]:
                details: dict[str, Any] = {
                    "kept": columns["record_id"][best],
                    "kept_teacher": columns["teacher_id"][best],
                    "teacher": columns["teacher_id"][index],
                    "policy": self.keep,
                    "confidence": round(float(confidence[index]), 4),
                    "kept_confidence": round(float(confidence[best]), 4),
                }
                if correct is not None:
                    details["correct"] = correct[index]
                    details["kept_correct"] = correct[best]
                decisions[index] = Drop(RejectReason.NOT_SELECTED, details)
        return decisions

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        """Which teacher supplied the kept rows: the mix the student will learn from."""
        teachers = table.column("teacher_id").to_pylist()
        kept: dict[str, int] = defaultdict(int)
        for teacher, decision in zip(teachers, decisions, strict=True):
            if decision is None:
                kept[teacher] += 1
        return {"kept_per_teacher": dict(sorted(kept.items()))}
