"""What `distill eval` writes: `EvalResult`, the JSON of a comparison of models on MCQ.

Every rate is an `Estimate` (value, bootstrap interval, counts). Accuracy counts a response
with no extractable letter as wrong; the extraction rate says how many responses named a
letter at all, so a model that cannot follow the answer format is not mistaken for one
that knows nothing. The questions themselves are listed (`items`), so each figure can be
recomputed from the per-question letters each model chose.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from distill.eval.heldout_check import TrainedPolicy
from distill.eval.models import Role
from distill.eval.stats import Estimate

CHANCE = 0.25  # four options
EVAL_RESULT_NAME = "eval.json"  # what `distill report` looks for in a folder


class GroupScore(BaseModel):
    """Accuracy and extraction rate over a group of questions (all, a category, a subject)."""

    model_config = ConfigDict(extra="forbid")
    accuracy: Estimate
    extraction: Estimate


class ModelResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str
    role: Role
    spec: str
    path: str
    runs: list[str] = Field(description="the train runs it is the student or baseline of")
    on_trained_prompts: bool = Field(
        description="some evaluated question was trained on by its run (--force-trained)"
    )
    overall: GroupScore
    per_category: dict[str, GroupScore]
    per_subject: dict[str, GroupScore]
    permutation_consistency: Estimate = Field(
        description="questions whose chosen option (mapped back) survives permuted options"
    )
    rewording_consistency: Estimate | None = Field(
        description="mean over questions of the share of rewordings keeping the choice"
    )
    rewording_by_template: dict[str, Estimate]
    answers: list[str | None] = Field(description="the letter chosen per question, as asked")
    permuted_answers: list[str | None] = Field(
        description="the letter chosen in the permuted question, mapped back to the original"
    )
    reworded_answers: list[dict[str, str | None]]


class QuestionItem(BaseModel):
    """One evaluated question: where it is, what it is about, how it was varied."""

    model_config = ConfigDict(extra="forbid")
    line: int
    subject: str
    category: str
    reference: str
    order: list[int] = Field(description="the permutation: new option i is old option order[i]")
    rewordings: list[str]
    trained_by: list[str] = Field(description="train runs that trained on it (forced only)")


class EvalResult(BaseModel):
    model_config = ConfigDict(extra="forbid")
    questions: str
    count: int
    seed: int
    max_new_tokens: int
    rewordings_per_question: int
    bootstrap_samples: int
    confidence: float
    chance: float = CHANCE
    categories_source: str
    categories: list[str] = Field(description="display order; 'unmapped' last if any")
    unmapped_subjects: list[str]
    trained_policy: TrainedPolicy
    skipped_trained: int = Field(description="questions left out as trained on (--skip-trained)")
    on_trained_prompts: int = Field(description="evaluated questions a run trained on (forced)")
    heldout_check: dict[str, str] = Field(
        description="run dir -> how trained-on questions were found: dataset | held-out ids"
    )
    items: list[QuestionItem]
    models: list[ModelResult]
