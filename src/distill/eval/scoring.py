"""From the letters a model chose to its scores: accuracy and extraction per subject and per
category, and consistency under permuted options and rewordings, each with its interval.

Pure functions over lists of letters, so a test can score a fake model's choices by hand.
Per question:
- correct: the letter extracted from the response to the question as written is the
  reference (no letter: wrong);
- extracted: a letter was found at all;
- permutation-consistent: both responses named a letter, and the permuted one, mapped back
  through the permutation, is the same option;
- rewording share: of the question's rewordings, the share whose letter is the one chosen
  as written (options are not moved by a rewording); no letter as written: 0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from distill.eval.models import EvalModel
from distill.eval.result import GroupScore, ModelResult
from distill.eval.stats import Estimate, estimate, grouped_estimates
from distill.tasks.mcq_variants import McqVariants, unpermuted_letter


@dataclass(frozen=True)
class ChosenLetters:
    """What one model chose on every question, in each way it was asked."""

    answers: list[str | None]
    permuted: list[str | None]  # as chosen in the permuted question (not mapped back)
    reworded: list[dict[str, str | None]]


@dataclass(frozen=True)
class ScoreSettings:
    """What the scores are computed over: each question's category, and the bootstrap."""

    categories: list[str]  # per question
    category_order: list[str]
    seed: int
    bootstrap_samples: int


def _groups(
    correct: np.ndarray, extracted: np.ndarray, labels: Sequence[str], order: Sequence[str],
    settings: ScoreSettings,
) -> dict[str, GroupScore]:  # fmt: skip
    seed, samples = settings.seed, settings.bootstrap_samples
    accuracy = grouped_estimates(correct, labels, order, seed, samples)
    extraction = grouped_estimates(extracted, labels, order, seed, samples)
    return {
        name: GroupScore(accuracy=accuracy[name], extraction=extraction[name]) for name in accuracy
    }


def _rewording(
    questions: Sequence[McqVariants], chosen: ChosenLetters, settings: ScoreSettings
) -> tuple[Estimate | None, dict[str, Estimate]]:
    """(the mean share of rewordings keeping the choice, the rate per template)."""
    shares, per_template = [], {}
    for question, answer, reworded in zip(questions, chosen.answers, chosen.reworded, strict=True):
        same = [answer is not None and reworded[name] == answer for name in question.reworded]
        for name, kept in zip(question.reworded, same, strict=True):
            per_template.setdefault(name, []).append(float(kept))
        if same:
            shares.append(float(np.mean(same)))
    seed, samples = settings.seed, settings.bootstrap_samples
    overall = estimate(shares, seed, samples) if shares else None
    return overall, {name: estimate(kept, seed, samples) for name, kept in per_template.items()}


def score_model(
    model: EvalModel,
    questions: Sequence[McqVariants],
    chosen: ChosenLetters,
    settings: ScoreSettings,
    trained_by: Sequence[tuple[str, ...]],
) -> ModelResult:
    """One model's `ModelResult` from the letters it chose."""
    answers = chosen.answers
    correct = np.array([a == q.reference for a, q in zip(answers, questions, strict=True)], float)
    extracted = np.array([a is not None for a in answers], float)
    mapped = [
        unpermuted_letter(p, q.order) for p, q in zip(chosen.permuted, questions, strict=True)
    ]
    stays = np.array(
        [a is not None and m == a for a, m in zip(answers, mapped, strict=True)], float
    )
    seed, samples = settings.seed, settings.bootstrap_samples
    subjects = [q.subject for q in questions]
    rewording, by_template = _rewording(questions, chosen, settings)
    runs = {str(run) for run in model.runs}
    by_category = _groups(
        correct, extracted, settings.categories, settings.category_order, settings
    )
    return ModelResult(
        label=model.label,
        role=model.role,
        spec=model.spec,
        path=str(model.path),
        runs=sorted(runs),
        on_trained_prompts=model.role == "student" and any(runs & set(t) for t in trained_by),
        overall=GroupScore(
            accuracy=estimate(correct, seed, samples),
            extraction=estimate(extracted, seed, samples),
        ),
        per_category=by_category,
        per_subject=_groups(correct, extracted, subjects, sorted(set(subjects)), settings),
        permutation_consistency=estimate(stays, seed, samples),
        rewording_consistency=rewording,
        rewording_by_template=by_template,
        answers=answers,
        permuted_answers=mapped,
        reworded_answers=chosen.reworded,
    )
