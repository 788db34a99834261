"""Curation: turn a generated dataset into a kept dataset plus every rejected row with why.

    from distill.curate import curate_dataset, load_recipe
    result = curate_dataset(Path("gen"), Path("cur"), load_recipe("recipe.yaml"))

A recipe is an ordered list of small steps (`exact_dedup`, `truncated`, `mcq_verify`,
`domain_cap`); see `distill.curate.recipe` for the file format and
`distill.curate.runner` for the manifest keys the runner writes.
"""

from distill.curate.balance import DomainCap
from distill.curate.base import DatasetStep, Drop, RejectReason, RowStep, Step
from distill.curate.dedup import ExactDedup
from distill.curate.mcq import McqVerify, extract_choice
from distill.curate.recipe import Recipe, RecipeError, default_recipe, load_recipe
from distill.curate.runner import CurateResult, DomainAccuracy, StepStats, curate_dataset
from distill.curate.truncated import DropTruncated

__all__ = [
    "CurateResult",
    "DatasetStep",
    "DomainAccuracy",
    "DomainCap",
    "Drop",
    "DropTruncated",
    "ExactDedup",
    "McqVerify",
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
]
