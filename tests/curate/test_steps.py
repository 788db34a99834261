from __future__ import annotations

import typing

import distill.curate
from distill.curate.base import Step
from distill.curate.recipe import Recipe
from distill.curate.steps import STEP_CLASSES, STEP_TYPES, StepConfig


def test_every_step_class_is_registered_once_under_its_recipe_name() -> None:
    assert len(STEP_TYPES) == len(STEP_CLASSES) == len(set(STEP_CLASSES))
    for name, cls in STEP_TYPES.items():
        assert issubclass(cls, Step)
        assert cls.model_fields["name"].default == name
    # The names recipes use are public: none may disappear or be renamed.
    assert list(STEP_TYPES) == [
        *("exact_dedup", "near_dedup", "semantic_dedup", "truncated", "mcq_verify"),
        *("math_verify", "match_verify", "user_filter", "confidence", "empty", "length"),
        *("repetition", "refusal", "language", "domain_cap", "domain_ratio"),
        *("domain_token_budget", "domain_temperature", "decontaminate", "llm_judge"),
        "select_teacher",
    ]


def test_the_recipe_union_is_the_registry() -> None:
    union = typing.get_args(StepConfig)[0]
    assert set(typing.get_args(union)) == set(STEP_CLASSES)
    assert Recipe.model_fields["steps"].annotation == list[StepConfig]


def test_every_step_class_is_exported() -> None:
    for cls in STEP_CLASSES:
        assert getattr(distill.curate, cls.__name__) is cls
        assert cls.__name__ in distill.curate.__all__
    assert "SelectTeacher" in distill.curate.__all__
    for name in distill.curate.__all__:
        assert hasattr(distill.curate, name), name
