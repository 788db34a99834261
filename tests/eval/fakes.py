"""Questions with known answers and fake models whose behaviour the tests choose.

A fake model is an `Answerer` (prompts -> responses); it reads the options off the prompt
as the model would see them, so it meets permutations and rewordings for real.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

from distill.eval.models import EvalModel

# (question, options, reference, MMLU subject): subjects over all four categories.
QUESTIONS = [
    ("What is 2 + 2?", ["3", "4", "5", "6"], "B", "elementary mathematics"),  # STEM
    ("What is 3 * 3?", ["9", "6", "12", "8"], "A", "elementary mathematics"),  # STEM
    ("What force pulls objects to the ground?", ["Magnetism", "Friction", "Wind", "Gravity"],
     "D", "conceptual physics"),  # STEM
    ("Capital of France?", ["Rome", "Berlin", "Madrid", "Paris"], "D", "high school geography"),
    ("Largest ocean?", ["Atlantic", "Pacific", "Indian", "Arctic"], "B", "high school geography"),
    ("Which religion has the Torah?", ["Judaism", "Shinto", "Jainism", "Sikhism"], "A",
     "world religions"),  # humanities
    ("Who leads a company?", ["An intern", "The CEO", "A customer", "A supplier"], "B",
     "management"),  # other
    ("What rises with age?", ["Height", "Bone density", "Risk of dementia", "Hearing"], "C",
     "human aging"),  # other
]  # fmt: skip
RIGHT = {options["ABCD".index(ref)] for _, options, ref, _ in QUESTIONS}
STEMS = {question for question, *_ in QUESTIONS}

OPTION_LINE = re.compile(r"^([A-D])\. (.*)$", re.MULTILINE)


def mcq_file(tmp_path: Path, questions: list[tuple] = QUESTIONS) -> Path:
    path = tmp_path / "mcq.jsonl"
    rows = [
        {
            "question": q,
            **{f"answer_{letter}": o for letter, o in zip("abcd", opts, strict=True)},
            "correct_answer": ref,
            "topic": topic,
        }
        for q, opts, ref, topic in questions
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def options_of(prompt: str) -> dict[str, str]:
    """letter -> option text, as the prompt lists them."""
    return dict(OPTION_LINE.findall(prompt))


def knows(prompt: str) -> str:
    """Picks the right option's content wherever it stands: consistent and correct."""
    letter = next(k for k, v in options_of(prompt).items() if v in RIGHT)
    return f"It is this one. Answer: {letter}"


def always_a(prompt: str) -> str:
    """Answers by position: its choice moves with a permutation."""
    return "Answer: A"


def stem_of(prompt: str) -> str:
    return prompt.split("Question: ", 1)[1].split("\n", 1)[0]


def fooled_by_wording(prompt: str) -> str:
    """Right when the question is asked as written, 'D' when it is reworded."""
    return knows(prompt) if stem_of(prompt) in STEMS else "Answer: D"


def mute_on(subjects_words: tuple[str, ...]) -> Callable[[str], str]:
    """Right, except an answer with no letter when the stem holds one of the words."""

    def answer(prompt: str) -> str:
        stem = stem_of(prompt).lower()
        if any(word in stem for word in subjects_words):
            return "I am not sure about this one."
        return knows(prompt)

    return answer


def fake_models(behaviours: dict[str, Callable[[str], str]], tmp_path: Path) -> list[EvalModel]:
    """One `EvalModel` per behaviour (a placeholder checkpoint dir each)."""
    models = []
    for label in behaviours:
        path = tmp_path / f"model-{label}"
        path.mkdir(exist_ok=True)
        models.append(EvalModel(label, "model", f"hf:{path}", path))
    return models


def fake_loader(behaviours: dict[str, Callable[[str], str]]) -> Callable:
    """`evaluate_mcq`'s `load`: each model answers with its behaviour."""

    def load(model: EvalModel, options: object) -> Callable[[list[str]], list[str]]:
        behaviour = behaviours[model.label]
        return lambda prompts: [behaviour(p) for p in prompts]

    return load
