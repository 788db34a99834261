"""Curation: turn a generated dataset into a kept dataset plus every rejected row with why.

    from distill.curate import curate_dataset, load_recipe
    result = curate_dataset(Path("gen"), Path("cur"), load_recipe("recipe.yaml"))

A recipe is an ordered list of small steps; `distill.curate.steps` lists every step type
(`STEP_TYPES`: `exact_dedup`, `near_dedup`, `truncated`, `domain_cap`, ...), and every step
class is exported here. See `distill.curate.recipe` for the file format and
`distill.curate.runner` for the manifest keys the runner writes.
"""

from distill.curate import steps
from distill.curate.base import DatasetStep, Drop, RejectReason, RowStep, Step
from distill.curate.llm_judge import parse_score
from distill.curate.recipe import Recipe, RecipeError, default_recipe, load_recipe
from distill.curate.runner import CurateResult, DomainAccuracy, StepStats, curate_dataset
from distill.curate.steps import *  # noqa: F403  (every step class, from the one registry)
from distill.tasks.mcq import extract_choice

__all__ = [
    *steps.__all__,
    "CurateResult",
    "DatasetStep",
    "DomainAccuracy",
    "Drop",
    "Recipe",
    "RecipeError",
    "RejectReason",
    "RowStep",
    "Step",
    "StepStats",
    "curate_dataset",
    "default_recipe",
    "extract_choice",
    "load_recipe",
    "parse_score",
]
