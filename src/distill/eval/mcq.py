"""`evaluate_mcq`: teacher, baseline and students side by side on multiple-choice questions.

The comparison practitioners make: the teacher (the upper bound), the student's initial
weights (the baseline) and each trained student, on the same held-out questions, with
- accuracy and the answer-extraction rate, overall, per MMLU category and per subject,
  each with a bootstrap interval (`stats`);
- consistency under permuted options and under deterministic rewordings
  (`distill.tasks.mcq_variants`);
- a refusal to score a student on questions it trained on (`heldout_check`), unless told
  to skip them or to evaluate them anyway (then the result says so).

Models are given as specs (`models`); each is loaded, asks every question in every form
(greedy decoding, `answers`), and is released before the next one is loaded, so only one
model is in memory at a time. The letter is read with `distill.tasks.mcq.chosen_letter`.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from distill.eval.answers import Answerer, DecodeOptions, hf_answerer
from distill.eval.heldout_check import (
    TrainedCheck,
    TrainedPolicy,
    TrainedPromptsError,
    check_trained,
    refusal,
)
from distill.eval.models import EvalModel, resolve_models
from distill.eval.result import EvalResult, QuestionItem
from distill.eval.scoring import ChosenLetters, ScoreSettings, score_model
from distill.eval.stats import BOOTSTRAP_SAMPLES, CONFIDENCE
from distill.store import write_json
from distill.tasks.mcq import chosen_letter
from distill.tasks.mcq_variants import McqVariants, mcq_variants
from distill.tasks.mmlu import read_mcq_lines
from distill.tasks.mmlu_categories import UNMAPPED, category_map

LoadAnswerer = Callable[[EvalModel, DecodeOptions], Answerer]


class EvalConfig(BaseModel):
    """What `evaluate_mcq` asks and how it scores; `distill eval` builds it from its flags."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    limit: int | None = Field(default=None, ge=1, description="the first N questions only")
    seed: int = Field(default=0, description="seed of the option permutations and bootstrap")
    rewordings_per_question: int = Field(default=2, ge=0, le=4, description="0 to 4 rewordings")
    bootstrap_samples: int = Field(default=BOOTSTRAP_SAMPLES, ge=100)
    trained: TrainedPolicy = Field(
        default="refuse",
        description="questions a run trained on: refuse | skip (leave them out) | force "
        "(evaluate them, labelled)",
    )
    categories: Path | None = Field(
        default=None, description="a {subject: category} JSON/YAML file; None: MMLU's four"
    )
    decode: DecodeOptions = Field(default_factory=DecodeOptions)


def load_model_answerer(model: EvalModel, options: DecodeOptions) -> Answerer:
    return hf_answerer(model.path, options)


def _questions(
    path: Path, models: Sequence[EvalModel], config: EvalConfig
) -> tuple[list[McqVariants], TrainedCheck, int]:
    """The questions to ask (after the trained-on policy and the limit), the check's
    verdict on them, and how many trained-on questions were skipped."""
    variants = mcq_variants(
        list(read_mcq_lines(path)), str(path), config.seed, config.rewordings_per_question
    )
    runs = {str(run): m.lineage for m in models if m.lineage for run in m.runs}
    check = check_trained(variants, runs)
    keep = list(range(len(variants)))
    if config.trained == "skip":
        keep = [i for i in keep if not check.trained_by[i]]
    keep = keep[: config.limit] if config.limit is not None else keep
    if not keep:
        skipped = " held-out" if config.trained == "skip" and variants else ""
        raise ValueError(f"{path}: no{skipped} questions to evaluate")
    kept = [variants[i] for i in keep]
    kept_check = TrainedCheck([check.trained_by[i] for i in keep], check.method)
    if config.trained == "refuse" and kept_check.trained():
        raise TrainedPromptsError(refusal(str(path), kept_check, kept))
    skipped = sum(bool(runs) for runs in check.trained_by) if config.trained == "skip" else 0
    return kept, kept_check, skipped


def _items(
    asked: Sequence[McqVariants], categories: Sequence[str], check: TrainedCheck
) -> list[QuestionItem]:
    return [
        QuestionItem(
            line=q.line, subject=q.subject, category=category, reference=q.reference,
            order=q.order, rewordings=list(q.reworded), trained_by=list(trained),
        )
        for q, category, trained in zip(asked, categories, check.trained_by, strict=True)
    ]  # fmt: skip


def _ask(answer: Answerer, questions: Sequence[McqVariants]) -> ChosenLetters:
    """Every form of every question in one call, and the letter each response chose."""
    reworded = [(i, name, q.reworded[name]) for i, q in enumerate(questions) for name in q.reworded]
    prompts = [q.prompt for q in questions] + [q.permuted_prompt for q in questions]
    texts = answer(prompts + [prompt for *_, prompt in reworded])
    letters = [chosen_letter(text) for text in texts]
    count = len(questions)
    by_question: list[dict[str, str | None]] = [{} for _ in questions]
    for (index, name, _), letter in zip(reworded, letters[2 * count :], strict=True):
        by_question[index][name] = letter
    return ChosenLetters(letters[:count], letters[count : 2 * count], by_question)


def evaluate_mcq(
    models: Sequence[str | EvalModel],
    questions: Path,
    config: EvalConfig | None = None,
    out: Path | None = None,
    *,
    load: LoadAnswerer = load_model_answerer,
) -> EvalResult:
    """Compare the models on the MMLU-format questions; write the JSON to `out` if given.

    `models`: specs (`distill.eval.models`) or resolved `EvalModel`s. `load(model, decode)`
    gives a model's `Answerer` (default: the transformers checkpoint). Raises
    `TrainedPromptsError` when a student trained on a question and `config.trained` is
    "refuse"; FileNotFoundError / ValueError for a bad spec or file, naming it.
    """
    config = config or EvalConfig()
    questions = Path(questions)
    specs = [m for m in models if isinstance(m, str)]
    resolved = [
        *(resolve_models(specs) if specs else []),
        *(m for m in models if isinstance(m, EvalModel)),
    ]
    asked, check, skipped = _questions(questions, resolved, config)
    mapping = category_map(config.categories)
    categories = [mapping.category_of(q.subject) for q in asked]
    order = [c for c in mapping.categories if c in categories]
    unmapped = sorted({q.subject for q in asked if mapping.category_of(q.subject) == UNMAPPED})
    order += [UNMAPPED] if unmapped else []
    settings = ScoreSettings(categories, order, config.seed, config.bootstrap_samples)
    scores = []
    for model in resolved:
        answer = load(model, config.decode)
        chosen = _ask(answer, asked)
        del answer  # one model in memory at a time
        gc.collect()
        scores.append(score_model(model, asked, chosen, settings, check.trained_by))
    result = EvalResult(
        questions=str(questions),
        count=len(asked),
        seed=config.seed,
        max_new_tokens=config.decode.max_new_tokens,
        rewordings_per_question=config.rewordings_per_question,
        bootstrap_samples=config.bootstrap_samples,
        confidence=CONFIDENCE,
        categories_source=mapping.source,
        categories=order,
        unmapped_subjects=unmapped,
        trained_policy=config.trained,
        skipped_trained=skipped,
        on_trained_prompts=len(check.trained()),
        heldout_check=check.method,
        items=_items(asked, categories, check),
        models=scores,
    )
    if out is not None:
        write_json(Path(out), result.model_dump(mode="json"))
    return result
