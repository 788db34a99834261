"""Multiple-choice questions: the prompt format, the letter a response chose, the reference.

The format is MMLU's (the fields of `MMLU_FIELDS`): `mmlu_prompt` writes the question with
its options A-D and asks for a final "Answer: X" line. `distill gen --format mmlu` sends it,
`distill eval` asks it (also with the options permuted: `permute_options`), and curation's
`mcq_verify` and confidence signals grade the responses with `extract_choice`.

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

A reference that is not one of the letters (`normalize_reference` gives None) marks a row
that is not multiple-choice.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any, NamedTuple

from distill.input_rows import PromptError, text_problem

MMLU_FIELDS = (
    "question",
    "answer_a",
    "answer_b",
    "answer_c",
    "answer_d",
    "correct_answer",
    "topic",
)
LETTERS = ("A", "B", "C", "D")

MMLU_INSTRUCTION = (
    "Answer the following multiple-choice question. Think briefly, in one or two "
    "sentences, then finish with a line of the form 'Answer: X' where X is A, B, C or D."
)

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


def chosen_letter(text: str, letters: str = "ABCD") -> str | None:
    """The letter `extract_choice` finds in the response, or None."""
    found = extract_choice(text, letters)
    return found.letter if found is not None else None


def mmlu_prompt(row: dict[str, Any], file: str, line: int) -> tuple[str, str, str]:
    """(user prompt, domain, reference letter) for one MMLU row; PromptError if malformed."""
    for name in MMLU_FIELDS:
        value = row.get(name)
        if value is None or not str(value).strip():
            raise PromptError(file, line, name, "missing or empty")
        problem = None if isinstance(value, int | float) else text_problem(value)
        if problem is not None:  # an object would become its Python repr in the prompt
            raise PromptError(file, line, name, problem)
    reference = _mmlu_reference(row)
    if reference not in LETTERS:
        raise PromptError(file, line, "correct_answer", f"'{reference}' is not one of A-D")
    options = "\n".join(f"{letter}. {row[f'answer_{letter.lower()}']}" for letter in LETTERS)
    text = f"{MMLU_INSTRUCTION}\n\nQuestion: {row['question']}\n{options}"
    return text, str(row["topic"]), reference


def _mmlu_reference(row: dict[str, Any]) -> str:
    return str(row["correct_answer"]).strip().upper()


def permute_options(row: dict[str, Any], rng: random.Random) -> tuple[dict[str, Any], list[int]]:
    """The row with its four options in a random non-identity order, and `order`:
    new option i is old option order[i]. The reference letter follows its content."""
    order = list(range(len(LETTERS)))
    while order == sorted(order):
        rng.shuffle(order)
    new = dict(row)
    for i, old in enumerate(order):
        new[f"answer_{LETTERS[i].lower()}"] = row[f"answer_{LETTERS[old].lower()}"]
    old_ref = LETTERS.index(_mmlu_reference(row))
    new["correct_answer"] = LETTERS[order.index(old_ref)]
    return new, order
