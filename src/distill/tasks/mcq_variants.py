"""The same multiple-choice question asked another way: options reordered, or reworded.

A model that knows the answer picks the same option whatever its letter and however the
question is phrased. `distill eval` asks every question once as written, once with its
options permuted (`mcq.permute_options`, the choice mapped back through the permutation)
and once per rewording here, and counts how often the chosen option stays the same.

The rewordings are deterministic, so every model sees the very same prompts and a run
can be repeated: no paraphrasing model, only fixed templates over the question stem.
They change the surface, never the content or the options:

- `lowercase`: the stem in lower case (casing);
- `no_punctuation`: marks before a space or the end dropped, "What is 2 + 2?" -> "What is
  2 + 2" (punctuation; a mark inside a number or word stays: "3.5", "e.g");
- `which_of_these`: "Which of these is the right answer? <stem>" (a "Which of these..." form);
- `paraphrase`: "Consider the following question carefully. <stem>" (a paraphrase template).

Question `i` gets `rewordings_per_question` of them, starting at template `i mod 4`, so a
small set still covers every template.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distill.tasks.mcq import LETTERS, mmlu_prompt, permute_options
from distill.tasks.mmlu import McqLine

# Marks before a space or the end of the stem (not inside "3.5"), and lone ones.
_EDGE_PUNCTUATION = re.compile(r"(?<=\w)[?!.,;:]+(?=\s|$)|(?<=\s)[?!.,;:]+(?=\s|$)")


def _lowercase(stem: str) -> str:
    return stem.lower()


def _no_punctuation(stem: str) -> str:
    dropped = _EDGE_PUNCTUATION.sub("", stem)
    return re.sub(r"[ \t]{2,}", " ", dropped).strip()


def _which_of_these(stem: str) -> str:
    return f"Which of these is the right answer? {stem}"


def _paraphrase(stem: str) -> str:
    return f"Consider the following question carefully. {stem}"


REWORDINGS: dict[str, Callable[[str], str]] = {
    "lowercase": _lowercase,
    "no_punctuation": _no_punctuation,
    "which_of_these": _which_of_these,
    "paraphrase": _paraphrase,
}


def reworded_row(row: dict[str, Any], rewording: str) -> dict[str, Any]:
    """The MMLU row with its question stem reworded; options and reference unchanged."""
    try:
        reword = REWORDINGS[rewording]
    except KeyError:
        raise ValueError(
            f"unknown rewording {rewording!r} (known: {', '.join(REWORDINGS)})"
        ) from None
    return {**row, "question": reword(str(row["question"]))}


def rewordings_for(index: int, count: int) -> list[str]:
    """The rewordings question `index` is asked with: `count` templates from `index mod 4`."""
    if not 0 <= count <= len(REWORDINGS):
        raise ValueError(f"rewordings per question must be 0..{len(REWORDINGS)}, got {count}")
    names = list(REWORDINGS)
    return [names[(index + j) % len(names)] for j in range(count)]


def unpermuted_letter(letter: str | None, order: list[int]) -> str | None:
    """The original letter of the option chosen as `letter` in the permuted question
    (`permute_options`: new option i is old option order[i]); None stays None."""
    if letter is None:
        return None
    return LETTERS[order[LETTERS.index(letter)]]


@dataclass(frozen=True)
class McqVariants:
    """One question and every way `distill eval` asks it."""

    line: int  # 1-based line in the questions file
    subject: str
    reference: str  # the correct letter, as written
    prompt: str
    permuted_prompt: str
    order: list[int]  # the permutation behind `permuted_prompt`
    reworded: dict[str, str]  # rewording name -> prompt


def mcq_variants(
    lines: list[McqLine], source: str, seed: int, rewordings_per_question: int
) -> list[McqVariants]:
    """Each question's prompts: as written, options permuted (seeded), and reworded."""
    rng = random.Random(seed)
    questions = []
    for index, question in enumerate(lines):
        prompt, subject, reference = mmlu_prompt(question.row, source, question.line)
        permuted, order = permute_options(question.row, rng)
        reworded = {
            name: mmlu_prompt(reworded_row(question.row, name), source, question.line)[0]
            for name in rewordings_for(index, rewordings_per_question)
        }
        questions.append(
            McqVariants(
                line=question.line,
                subject=subject,
                reference=reference,
                prompt=prompt,
                permuted_prompt=mmlu_prompt(permuted, source, question.line)[0],
                order=order,
                reworded=reworded,
            )
        )
    return questions
