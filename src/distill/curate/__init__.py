"""Curation: turn a generated dataset into a kept dataset plus every rejected row with why.

    from distill.curate import curate_dataset, load_recipe
    result = curate_dataset(Path("gen"), Path("cur"), load_recipe("recipe.yaml"))

A recipe is an ordered list of small steps (`exact_dedup`, `near_dedup`, `semantic_dedup`,
`truncated`, `mcq_verify`, `math_verify`, `match_verify`, `user_filter`, `confidence`,
`empty`, `length`, `repetition`, `refusal`, `language`, `decontaminate`, `domain_cap`,
`domain_ratio`, `domain_token_budget`, `domain_temperature`, `llm_judge`); see
`distill.curate.recipe` for the file format and `distill.curate.runner` for the manifest
keys the runner writes.
"""

from distill.curate.balance import DomainCap, DomainRatio, DomainTemperature, DomainTokenBudget
from distill.curate.base import DatasetStep, Drop, RejectReason, RowStep, Step
from distill.curate.confidence import ConfidenceFilter
from distill.curate.decontaminate import Decontaminate
from distill.curate.dedup import ExactDedup, NearDedup, SemanticDedup
from distill.curate.heuristics import DropEmpty, LengthFilter, RefusalFilter, RepetitionFilter
from distill.curate.language import LanguageFilter
from distill.curate.llm_judge import LlmJudge, parse_score
from distill.curate.mcq import McqVerify, extract_choice
from distill.curate.recipe import Recipe, RecipeError, default_recipe, load_recipe
from distill.curate.runner import CurateResult, DomainAccuracy, StepStats, curate_dataset
from distill.curate.truncated import DropTruncated
from distill.curate.verify import MatchVerify, MathVerify, UserFilter

__all__ = [
    "ConfidenceFilter",
    "CurateResult",
    "DatasetStep",
    "Decontaminate",
    "DomainAccuracy",
    "DomainCap",
    "DomainRatio",
    "DomainTemperature",
    "DomainTokenBudget",
    "Drop",
    "DropEmpty",
    "DropTruncated",
    "ExactDedup",
    "LanguageFilter",
    "LengthFilter",
    "LlmJudge",
    "MatchVerify",
    "MathVerify",
    "McqVerify",
    "NearDedup",
    "Recipe",
    "RecipeError",
    "RefusalFilter",
    "RejectReason",
    "RepetitionFilter",
    "RowStep",
    "SemanticDedup",
    "Step",
    "StepStats",
    "UserFilter",
    "curate_dataset",
    "default_recipe",
    "extract_choice",
    "load_recipe",
    "parse_score",
]
