"""Multiple-choice answers: extract the letter a response chose and check it.

Models state their choice in many ways, so extraction tries rules from most to least
explicit and the first rule that matches decides:

1. a marker — "Answer: B", "The correct answer is (B).", "answer is **C**",
   "correct option is D", "\\boxed{B}"; when a response has several, the *last* wins
   (models often restate and correct themselves before the final "Answer: X");
2. a bold letter — "**B**", "**(B)**", "**B) 4**"; again the last one;
3. a letter ending the response — a lone "B" on the last line, "... so it is B.", "B)";
4. a letter opening the response as a choice label — "B. 14 m/s", "(C) Instinct" — the
   way small models often answer by copying the option line.

Choices are capital letters (A–D by default); lower case counts only in brackets
after a marker ("answer: (b)"), because "a" is an ordinary word. For the same reason
a capital "A" followed by a lower-case word ("Answer: A car is ...") is read as the
article, not a choice. Known blind spot: a response ending in a phrase such as
"Vitamin A." yields "A"; such rows can only be wrongly *kept* when A is the reference.

Rows without a reference, or whose reference is not one of the letters, are not
multiple-choice and pass through untouched; they are not counted in the accuracy.
"""

from __future__ import annotations

import re
from collections import defaultdict
from functools import lru_cache
from typing import Any, ClassVar, Literal, NamedTuple

import pyarrow as pa
from pydantic import Field, field_validator

from distill.curate.base import Decisions, Drop, RejectReason, RowStep, domain_of

# Words that may follow a chosen "A" in a sentence ("Answer: A because ...").
_CONNECTORS = frozenset({"because", "since", "as", "is", "and", "which", "with", "for"})
_ARTICLE_LETTERS = frozenset({"A", "I"})


class Extracted(NamedTuple):
    letter: str
    rule: str  # "marker" | "bold" | "trailing" | "leading": which rule found it, for debugging


@lru_cache(maxsize=8)
def _patterns(letters: str) -> list[tuple[str, re.Pattern[str]]]:
    upper = re.escape(letters.upper())
    both = upper + re.escape(letters.lower())
    marker = (
        r"(?i:\banswer\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?"
        r"|\bcorrect\s+(?:option|choice)\b(?:\s+is)?)"
        r"[\s*:=\-]*"
        rf"(?:[(\[]([{both}])[)\]]|([{upper}])(?![\w'’-]))"
    )
    boxed = rf"\\boxed\{{\s*\(?([{upper}])\)?\s*\}}"
    bold = rf"\*\*\s*\(?([{upper}])\)?(?:[.:)]\s*[^*\n]*)?\s*\*\*"
    trailing = rf"(?:^|[\s:(\[*])([{upper}])[)\]*]*[.!]?[\s*]*$"
    # Only the very start, and only as a label: "A. x" / "A) x" / "(A) x", never "A car";
    # and not when another line starts with a label (the model re-listing the options).
    label = rf"\(?[{upper}][.)][ \t]"
    leading = rf"\A\(?([{upper}])[.)][ \t]+\S(?![\s\S]*\n[ \t]*{label})"
    return [
        ("marker", re.compile(f"{marker}|{boxed}")),
        ("bold", re.compile(bold)),
        ("trailing", re.compile(trailing)),
        ("leading", re.compile(leading)),
    ]


def _is_article(text: str, end: int, letter: str) -> bool:
    """True when the capital letter at text[end-1] reads as a word: 'A car', not 'A because'."""
    if letter not in _ARTICLE_LETTERS:
        return False
    following = re.match(r"\s+([a-z]+)", text[end:])
    return following is not None and following.group(1) not in _CONNECTORS


def extract_choice(text: str, letters: str = "ABCD") -> Extracted | None:
    """The letter the response chose, or None when no rule finds one."""
    text = text.strip()
    for rule, pattern in _patterns(letters):
        found = None
        for match in pattern.finditer(text):
            group = next(i for i, g in enumerate(match.groups(), 1) if g is not None)
            letter = match.group(group).upper()
            if not _is_article(text, match.end(group), letter):
                found = letter  # keep going: the last match of a rule wins
        if found is not None:
            return Extracted(found, rule)
    return None


def normalize_reference(reference: str | None, letters: str = "ABCD") -> str | None:
    """'B', ' b ', '(B)' -> 'B'; None when the reference is not a multiple-choice letter."""
    if reference is None:
        return None
    cleaned = reference.strip().strip("().").strip().upper()
    return cleaned if len(cleaned) == 1 and cleaned in letters.upper() else None


class McqVerify(RowStep):
    """Keep a multiple-choice row only when the extracted letter equals the reference."""

    name: Literal["mcq_verify"] = "mcq_verify"
    columns: ClassVar[tuple[str, ...]] = ("response_text", "reference")

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
