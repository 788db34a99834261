"""Cheap quality rules on the response: empty, too short / too long, repetition loops, refusals.

- `empty`: no word character at all (whitespace, punctuation, nothing);
- `length`: fewer than `min_tokens` or more than `max_tokens` response tokens (counted from
  `token_ids` in Arrow, never converted to Python);
- `repetition`: the share of repeated word n-grams, 1 - distinct/total (Gopher, Rae et al.
  2021, uses the same family of statistics); a model stuck in a loop scores near 1;
- `refusal`: a phrase from the list within the first `window` characters, casefolded.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, NonNegativeInt, PositiveInt, model_validator

from distill.curate.base import Decisions, Drop, RejectReason, RowLocal, RowStep, Step

_WORD = re.compile(r"\w+")

DEFAULT_REFUSALS = (
    "i'm sorry, but",
    "i am sorry, but",
    "i apologize, but",
    "i cannot help",
    "i can't help",
    "i cannot assist",
    "i can't assist",
    "i cannot provide",
    "i can't provide",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "as an ai",
    "as a language model",
)


class DropEmpty(RowStep):
    name: Literal["empty"] = "empty"
    columns: ClassVar[tuple[str, ...]] = ("response_text",)

    def filter(self, row: dict[str, Any]) -> Drop | None:
        text = row["response_text"] or ""
        if _WORD.search(text) is None:
            return Drop(RejectReason.EMPTY, {"chars": len(text)})
        return None


class LengthFilter(RowLocal, Step):
    name: Literal["length"] = "length"
    columns: ClassVar[tuple[str, ...]] = ("token_ids",)

    min_tokens: NonNegativeInt = Field(1, description="drop responses shorter than this")
    max_tokens: PositiveInt | None = Field(None, description="drop responses longer than this")

    @model_validator(mode="after")
    def _range(self) -> LengthFilter:
        if self.max_tokens is not None and self.min_tokens > self.max_tokens:
            raise ValueError(f"min_tokens {self.min_tokens} is above max_tokens {self.max_tokens}")
        return self

    def decide(self, table: pa.Table) -> Decisions:
        lengths = np.asarray(pc.list_value_length(table.column("token_ids")).to_numpy())
        decisions: Decisions = []
        for n in lengths.tolist():
            if n < self.min_tokens:
                decisions.append(
                    Drop(RejectReason.TOO_SHORT, {"tokens": n, "min": self.min_tokens})
                )
            elif self.max_tokens is not None and n > self.max_tokens:
                decisions.append(Drop(RejectReason.TOO_LONG, {"tokens": n, "max": self.max_tokens}))
            else:
                decisions.append(None)
        return decisions


def repeated_ngram_ratio(text: str, n: int = 3) -> float:
    """1 - distinct/total word n-grams; 0.0 for text with fewer than n words."""
    words = _WORD.findall(text.casefold())
    total = len(words) - n + 1
    if total <= 0:
        return 0.0
    distinct = len({tuple(words[i : i + n]) for i in range(total)})
    return 1.0 - distinct / total


class RepetitionFilter(RowStep):
    name: Literal["repetition"] = "repetition"
    columns: ClassVar[tuple[str, ...]] = ("response_text",)

    ngram: PositiveInt = Field(3, description="word n-gram length")
    max_ratio: float = Field(0.3, ge=0, le=1, description="drop above this repeated share")
    min_words: NonNegativeInt = Field(20, description="shorter responses are not judged")

    def filter(self, row: dict[str, Any]) -> Drop | None:
        text = row["response_text"] or ""
        if len(_WORD.findall(text)) < self.min_words:
            return None
        ratio = repeated_ngram_ratio(text, self.ngram)
        if ratio > self.max_ratio:
            return Drop(
                RejectReason.REPETITION,
                {"ratio": round(ratio, 4), "ngram": self.ngram, "max_ratio": self.max_ratio},
            )
        return None


class RefusalFilter(RowStep):
    name: Literal["refusal"] = "refusal"
    columns: ClassVar[tuple[str, ...]] = ("response_text",)

    phrases: list[str] = Field(
        default_factory=lambda: list(DEFAULT_REFUSALS), description="matched casefolded"
    )
    window: PositiveInt | None = Field(
        300, description="look only at the first N characters; None for the whole response"
    )

    def filter(self, row: dict[str, Any]) -> Drop | None:
        text = (row["response_text"] or "").casefold().replace("’", "'")
        head = text if self.window is None else text[: self.window]
        for phrase in self.phrases:
            at = head.find(phrase.casefold())
            if at >= 0:
                return Drop(RejectReason.REFUSAL, {"phrase": phrase, "at": at})
        return None
