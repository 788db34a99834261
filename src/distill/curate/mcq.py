"""`mcq_verify`: keep a multiple-choice row only when the response chose the reference letter.

The letter is read with `distill.tasks.mcq.extract_choice` (its docstring lists the rules).
Rows without a reference, or whose reference is not one of the letters, are not
multiple-choice and pass through untouched; they are not counted in the accuracy.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any, ClassVar, Literal

import pyarrow as pa
from pydantic import Field, field_validator

from distill.curate.base import Decisions, Drop, RejectReason, RowStep, domain_of
from distill.tasks.mcq import extract_choice, normalize_reference


class McqVerify(RowStep):
    """Keep a multiple-choice row only when the extracted letter equals the reference."""

    name: Literal["mcq_verify"] = "mcq_verify"
    columns: ClassVar[tuple[str, ...]] = ("response_text", "reference")
    summary_columns: ClassVar[tuple[str, ...]] = ("domain", "reference")

    letters: str = Field("ABCD", min_length=2, description="the choice letters, in order")

    @field_validator("letters")
    @classmethod
    def _letters_are_distinct_capitals(cls, value: str) -> str:
        if not value.isalpha() or value.upper() != value or len(set(value)) != len(value):
            raise ValueError(f"letters must be distinct capital letters, got {value!r}")
        return value

    def filter(self, row: dict[str, Any]) -> Drop | None:
        reference = normalize_reference(row["reference"], self.letters)
        if reference is None:
            return None
        extracted = extract_choice(row["response_text"], self.letters)
        if extracted is None:
            return Drop(RejectReason.NO_ANSWER_FOUND, {"reference": reference})
        if extracted.letter != reference:
            return Drop(
                RejectReason.WRONG_ANSWER,
                {"extracted": extracted.letter, "reference": reference, "rule": extracted.rule},
            )
        return None

    def summarize(self, table: pa.Table, decisions: Decisions) -> dict[str, Any]:
        """Per-domain accuracy among the rows this step graded (those with a letter reference)."""
        graded: dict[str, int] = defaultdict(int)
        correct: dict[str, int] = defaultdict(int)
        domains = table.column("domain").to_pylist()
        references = table.column("reference").to_pylist()
        for domain, reference, decision in zip(domains, references, decisions, strict=True):
            if normalize_reference(reference, self.letters) is None:
                continue
            graded[domain_of(domain)] += 1
            correct[domain_of(domain)] += decision is None
        return {
            "accuracy_by_domain": {
                d: {"graded": graded[d], "correct": correct[d], "accuracy": correct[d] / graded[d]}
                for d in sorted(graded)
            }
        }
