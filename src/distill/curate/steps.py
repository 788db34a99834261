"""The step registry, written once: every step type a recipe can name.

`STEP_CLASSES` is the one list. The recipe's discriminated union (`StepConfig`), the name ->
class map (`STEP_TYPES`, keyed by each class's `name` default) and the step classes that
`distill.curate` exports are all built from it; a new step is added here and nowhere else.
"""

from __future__ import annotations

from typing import Annotated, Union

from pydantic import Field

from distill.curate.balance import DomainCap, DomainRatio, DomainTemperature, DomainTokenBudget
from distill.curate.base import Step
from distill.curate.confidence import ConfidenceFilter
from distill.curate.decontaminate import Decontaminate
from distill.curate.dedup import ExactDedup, NearDedup, SemanticDedup
from distill.curate.heuristics import DropEmpty, LengthFilter, RefusalFilter, RepetitionFilter
from distill.curate.language import LanguageFilter
from distill.curate.llm_judge import LlmJudge
from distill.curate.mcq import McqVerify
from distill.curate.select_teacher import SelectTeacher
from distill.curate.truncated import DropTruncated
from distill.curate.user_filter import UserFilter
from distill.curate.verify import MatchVerify, MathVerify

STEP_CLASSES: tuple[type[Step], ...] = (
    ExactDedup,
    NearDedup,
    SemanticDedup,
    DropTruncated,
    McqVerify,
    MathVerify,
    MatchVerify,
    UserFilter,
    ConfidenceFilter,
    DropEmpty,
    LengthFilter,
    RepetitionFilter,
    RefusalFilter,
    LanguageFilter,
    DomainCap,
    DomainRatio,
    DomainTokenBudget,
    DomainTemperature,
    Decontaminate,
    LlmJudge,
    SelectTeacher,
)


def step_name(cls: type[Step]) -> str:
    """The name a recipe gives the step: the default of its `name` field."""
    return cls.model_fields["name"].default


STEP_TYPES: dict[str, type[Step]] = {step_name(cls): cls for cls in STEP_CLASSES}

# One of the step models, chosen by its `name` (pydantic's tagged union).
StepConfig = Annotated[Union[STEP_CLASSES], Field(discriminator="name")]  # noqa: UP007

__all__ = [cls.__name__ for cls in STEP_CLASSES]
