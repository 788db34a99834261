from __future__ import annotations

from pathlib import Path

import pytest

from distill.curate import Recipe, RecipeError, default_recipe, load_recipe
from distill.curate.balance import DomainCap
from distill.curate.dedup import NearDedup
from distill.curate.recipe import recipe_from_dict


def test_default_recipe_order() -> None:
    recipe = default_recipe()
    assert [s.name for s in recipe.steps] == [
        "exact_dedup",
        "near_dedup",
        "truncated",
        "mcq_verify",
        "domain_cap",
    ]
    assert default_recipe(domain_cap=None).steps[-1] == DomainCap(cap=None)
    # At the step's own measured defaults, not a weaker setting of them.
    assert recipe.steps[1] == NearDedup()


def test_yaml_and_toml_load_the_same_recipe(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(
        "steps:\n"
        "  - name: exact_dedup\n"
        "  - name: mcq_verify\n"
        "  - name: domain_cap\n"
        "    cap: 500\n"
        "    caps: {math: 200}\n"
        "    seed: 7\n"
    )
    (tmp_path / "r.toml").write_text(
        '[[steps]]\nname = "exact_dedup"\n'
        '[[steps]]\nname = "mcq_verify"\n'
        '[[steps]]\nname = "domain_cap"\ncap = 500\ncaps = { math = 200 }\nseed = 7\n'
    )
    from_yaml = load_recipe(tmp_path / "r.yaml")
    assert from_yaml == load_recipe(tmp_path / "r.toml")
    assert from_yaml.steps[2] == DomainCap(cap=500, caps={"math": 200}, seed=7)


def test_recipe_round_trips_through_its_dump() -> None:
    recipe = default_recipe(domain_cap=3, seed=2)
    assert Recipe.model_validate(recipe.model_dump(mode="json")) == recipe


def test_unknown_key_names_file_step_and_key(tmp_path: Path) -> None:
    path = tmp_path / "typo.yaml"
    path.write_text("steps:\n  - name: exact_dedup\n  - name: domain_cap\n    capp: 5\n")
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert str(path) in message
    assert "steps[1] (domain_cap)" in message
    assert "'capp'" in message


def test_unknown_top_level_key() -> None:
    with pytest.raises(RecipeError, match="unknown key 'stpes'"):
        recipe_from_dict({"stpes": []}, "r.yaml")


def test_unknown_step_suggests_the_close_one(tmp_path: Path) -> None:
    path = tmp_path / "r.toml"
    path.write_text('[[steps]]\nname = "mcq_verfy"\n')
    with pytest.raises(RecipeError, match=r"unknown step 'mcq_verfy'.*did you mean 'mcq_verify'"):
        load_recipe(path)


def test_step_without_name() -> None:
    with pytest.raises(RecipeError, match=r"steps\[0\] needs a 'name'"):
        recipe_from_dict({"steps": [{"cap": 3}]})


def test_bad_value_is_reported() -> None:
    with pytest.raises(RecipeError, match=r"steps\[0\] \(domain_cap\): cap: .*greater than"):
        recipe_from_dict({"steps": [{"name": "domain_cap", "cap": -1}]})


def test_bad_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    (tmp_path / "r.json").write_text("{}")
    with pytest.raises(RecipeError, match=r"\.yaml, \.yml or \.toml"):
        load_recipe(tmp_path / "r.json")
    (tmp_path / "bad.yaml").write_text("steps: [\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(tmp_path / "bad.yaml")
