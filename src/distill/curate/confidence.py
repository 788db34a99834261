"""Keep rows by a confidence signal from the teacher's own log-probs; report each signal's AUROC.

    - name: confidence
      signal: self_consistency     # mean_entropy | min_logprob | answer_logprob | self_consistency
      min: 0.5                     # drop rows below; `max` drops rows above (e.g. entropy)
      letter_tokens: {A: [49, 330], B: [50, 389], C: [51, 340], D: [52, 422]}

With neither `min` nor `max` the step drops nothing and only measures. When the rows carry
multiple-choice references, the step's summary — and the curated manifest's
`stats["signal_auroc"]` — holds, for every signal it could compute on its input rows, the
AUROC for predicting a wrong answer (no answer found counts as wrong), so a report can say
which signal is worth thresholding on this teacher. Rows where the chosen signal is
undefined (no answer letter, a prompt with one sample) are kept unless `drop_missing`.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, NonNegativeInt, model_validator

from distill.curate.base import Decisions, Drop, RejectReason, Step
from distill.curate.signals import is_wrong, row_signals, signal_aurocs, with_self_consistency


class ConfidenceFilter(Step):
    name: Literal["confidence"] = "confidence"
    columns: ClassVar[tuple[str, ...]] = (
        "prompt_id",
        "response_text",
        "reference",
        "token_ids",
        "sampled_logprob",
    )
    reads_topk: ClassVar[bool] = True  # mean_entropy

    signal: Literal["mean_entropy", "min_logprob", "answer_logprob", "self_consistency"] = Field(
        "self_consistency", description="which signal the thresholds apply to"
    )
    min: float | None = Field(None, description="drop rows whose signal is below this")
    max: float | None = Field(None, description="drop rows whose signal is above this")
    drop_missing: bool = Field(False, description="drop rows where the signal is undefined")
    letters: str = Field("ABCD", min_length=2, description="the choice letters")
    letter_tokens: dict[str, list[NonNegativeInt]] = Field(
        default_factory=dict,
        description="letter -> its token ids (e.g. 'B' and ' B'); needed for answer_logprob",
    )

    @model_validator(mode="after")
    def _answer_logprob_needs_tokens(self) -> ConfidenceFilter:
        if self.signal == "answer_logprob" and not self.letter_tokens:
            raise ValueError("signal 'answer_logprob' needs letter_tokens")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is above max {self.max}: every row would go")
        return self

    def keys(self, batch: pa.Table, offset: int = 0) -> pa.Table:
        """prompt_id, the extracted answer, each row-local signal and whether the row is wrong
        (NaN: no letter reference). self_consistency compares the samples of a prompt, so it
        is computed from prompt_id and answer over every row at once."""
        ids = {tok: letter for letter, toks in self.letter_tokens.items() for tok in toks}
        table = self.view(batch)
        per_row, answers = row_signals(table, ids or None, self.letters)
        wrong = is_wrong(
            table.column("response_text").to_pylist(),
            table.column("reference").to_pylist(),
            self.letters,
        )
        keys = {
            "prompt_id": table.column("prompt_id"),
            "answer": pa.array(answers, pa.string()),
            **{name: pa.array(values, pa.float64()) for name, values in per_row.items()},
            "wrong": pa.array(wrong, pa.float64()),
        }
        return pa.table(keys)

    def _signals(self, keys: pa.Table) -> dict[str, np.ndarray]:
        per_row = {
            name: keys.column(name).to_numpy()
            for name in ("mean_entropy", "min_logprob", "answer_logprob")
            if name in keys.column_names
        }
        answers = keys.column("answer").to_pylist()
        return with_self_consistency(per_row, keys.column("prompt_id").to_pylist(), answers)

    def decide(self, table: pa.Table) -> Decisions:
        return self.decide_keys(self.keys(table))

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        return self.summarize_keys(self.keys(table), decisions)

    def decide_keys(self, keys: pa.Table) -> Decisions:
        values = self._signals(keys)[self.signal]
        decisions: Decisions = []
        for value in values.tolist():
            details: dict[str, Any] = {"signal": self.signal}
            if math.isnan(value):
                decisions.append(
                    Drop(RejectReason.LOW_CONFIDENCE, {**details, "value": None})
                    if self.drop_missing
                    else None
                )
            elif self.min is not None and value < self.min:
                decisions.append(
                    Drop(RejectReason.LOW_CONFIDENCE, {**details, "value": value, "min": self.min})
                )
            elif self.max is not None and value > self.max:
                decisions.append(
                    Drop(RejectReason.LOW_CONFIDENCE, {**details, "value": value, "max": self.max})
                )
            else:
                decisions.append(None)
        return decisions

    def summarize_keys(self, keys: pa.Table, decisions: Decisions) -> dict[str, Any]:
        if not keys.num_rows:
            return {}
        wrong = keys.column("wrong").to_numpy()
        if np.isnan(wrong).all():
            return {}
        return {"stats": {"signal_auroc": signal_aurocs(self._signals(keys), wrong)}}
