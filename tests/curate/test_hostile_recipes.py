"""Hostile recipes, generated over the whole step registry: NaN and inf, numbers outside a
field's bounds, values of the wrong type, unknown keys, and files that are not a mapping.

Every case is a `RecipeError` of the shape FILE: steps[I] (STEP): FIELD: PROBLEM, from the
YAML file itself. A step added to the registry is covered without editing this file; one
that needs arguments to exist at all must get them in REQUIRED (the first test says so).
"""

from __future__ import annotations

import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import annotated_types
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from distill.curate import RecipeError, load_recipe
from distill.curate.steps import STEP_TYPES

FUZZ = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
REQUIRED: dict[str, dict[str, Any]] = {  # the least each step needs to be valid
    "user_filter": {"function": "os.path:isabs"},
    "domain_ratio": {"ratios": {"math": 1.0}},
    "decontaminate": {"benchmarks": ["mmlu.jsonl"]},
}


def base(name: str) -> dict[str, Any]:
    return {"name": name, **REQUIRED.get(name, {})}


def scalar_types(annotation: Any) -> set[type]:
    """The scalar types a field takes (Optional and Annotated unwrapped)."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*(scalar_types(a) for a in typing.get_args(annotation)))
    if typing.get_origin(annotation) is typing.Annotated:
        return scalar_types(typing.get_args(annotation)[0])
    return {annotation} if annotation in (int, float) else set()


def bounds(info: Any) -> list[Any]:
    found = list(info.metadata)
    for arg in typing.get_args(info.annotation):  # Optional[Annotated[int, Gt(0)]]
        found += list(getattr(arg, "__metadata__", ()))
    return [
        b
        for b in found
        if isinstance(b, annotated_types.Gt | annotated_types.Ge | annotated_types.Le)
    ]


NUMERIC = sorted(
    (name, field)
    for name, cls in STEP_TYPES.items()
    for field, info in cls.model_fields.items()
    if scalar_types(info.annotation)
)
BOUNDED = [(name, field) for name, field in NUMERIC if bounds(STEP_TYPES[name].model_fields[field])]
FIELDS = sorted(
    (name, field)
    for name, cls in STEP_TYPES.items()
    for field in cls.model_fields
    if field != "name"
)


def refused(tmp_path: Path, steps: list[Any], document: Any = None, key: str = "") -> str:
    """The RecipeError of a YAML file holding `steps` (or `document`), less its FILE: or
    FILE:LINE: prefix; with `key`, the line named must be the one that sets that key."""
    path = tmp_path / "r.yaml"
    text = yaml.safe_dump({"steps": steps} if document is None else document)
    path.write_text(text)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    message = str(err.value)
    located = re.match(rf"{re.escape(str(path))}(:(\d+))?: ", message)
    assert located and (located.group(2) or not key), message
    if key:
        line = text.splitlines()[int(located.group(2)) - 1]
        assert re.match(rf"\s*(- )?{re.escape(key)}:", line), (line, message)
    return message[located.end() :]


def test_every_step_loads_from_its_base_and_the_registry_has_bounded_fields(tmp_path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"steps": [base(name) for name in STEP_TYPES]}))
    assert [s.name for s in load_recipe(path).steps] == list(STEP_TYPES)
    assert len(BOUNDED) >= 20 and ("near_dedup", "threshold") in BOUNDED


@given(target=st.sampled_from(NUMERIC), value=st.sampled_from([math.nan, math.inf, -math.inf]))
@FUZZ
def test_nan_and_inf_are_refused_in_every_numeric_field(tmp_path, target, value) -> None:
    name, field = target
    message = refused(tmp_path, [base("exact_dedup"), {**base(name), field: value}], key=field)
    assert message.startswith(f"steps[1] ({name}): {field}"), message


@given(target=st.sampled_from(BOUNDED), distance=st.integers(0, 10**6))
@FUZZ
def test_a_number_outside_its_bounds_names_the_field(tmp_path, target, distance) -> None:
    name, field = target
    info = STEP_TYPES[name].model_fields[field]
    bound = bounds(info)[0]
    step = 1 if int in scalar_types(info.annotation) else 0.25
    if isinstance(bound, annotated_types.Gt):
        value = bound.gt - distance * step
    elif isinstance(bound, annotated_types.Ge):
        value = bound.ge - step - distance * step
    else:
        value = bound.le + step + distance * step
    message = refused(tmp_path, [{**base(name), field: value}], key=field)
    assert message.startswith(f"steps[0] ({name}): {field}: Input should be"), message


@given(target=st.sampled_from(FIELDS), junk=st.dictionaries(st.text(max_size=5), st.integers()))
@FUZZ
def test_a_value_of_the_wrong_type_names_the_field(tmp_path, target, junk) -> None:
    name, field = target
    annotation = STEP_TYPES[name].model_fields[field].annotation
    wrong: Any = [[1], {"x": 2}] if typing.get_origin(annotation) is dict else {"junk": junk}
    message = refused(tmp_path, [{**base(name), field: wrong}], key=field)
    assert message.startswith(f"steps[0] ({name}): {field}"), message


@given(name=st.sampled_from(sorted(STEP_TYPES)), key=st.text(min_size=1, max_size=12))
@FUZZ
def test_an_unknown_key_is_named(tmp_path, name, key) -> None:
    if key in STEP_TYPES[name].model_fields:
        return
    message = refused(tmp_path, [{**base(name), key: 1}])
    assert message == f"steps[0] ({name}): unknown key {key!r}", message


@given(
    document=st.one_of(
        st.lists(st.integers(), min_size=1),
        st.text(min_size=1).filter(lambda t: t.strip()),
        st.integers(),
        st.booleans(),
    )
)
@FUZZ
def test_a_file_that_is_not_a_mapping_is_refused(tmp_path, document) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(document))
    loaded = yaml.safe_load(path.read_text())
    kind = {list: "a list", str: "text", int: "a number", bool: "a boolean"}[type(loaded)]
    message = refused(tmp_path, [], document)
    assert message == f"a recipe is a mapping with a 'steps' list, not {kind}"


@pytest.mark.parametrize(
    ("step", "problem"),
    [
        (
            {"name": "length", "min_tokens": 9, "max_tokens": 3},
            "min_tokens 9 is above max_tokens 3",
        ),
        ({"name": "confidence", "min": 0.9, "max": 0.1}, "min 0.9 is above max 0.1"),
        (
            {"name": "llm_judge", "min_score": 6, "max_score": 5},
            "min_score 6.0 is above max_score 5",
        ),
        ({"name": "near_dedup", "seed": -1}, "seed: Input should be greater than or equal to 0"),
        ({"name": [1]}, "'name' must be text"),
    ],
)
def test_settings_that_would_drop_everything_or_crash_later_are_refused(tmp_path, step, problem):
    assert problem in refused(tmp_path, [step])


def test_a_recipe_that_is_not_utf8_is_named(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    data = b"steps:\n  - name: exact_dedup # \xff\n"
    path.write_bytes(data)
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    byte = data.index(b"\xff") + 1
    assert str(err.value) == f"{path}: not UTF-8 text (byte {byte})"


def test_each_problem_of_a_yaml_recipe_gives_its_line(tmp_path: Path) -> None:
    path = tmp_path / "r.yaml"
    path.write_text(
        "description: x\n"
        "steps:\n"
        "  - name: exact_dedup\n"
        "  - name: domain_cap\n"
        "    capp: 5\n"
        "  - name: near_dedup\n"
        "    threshold: .nan\n"
    )
    with pytest.raises(RecipeError) as err:
        load_recipe(path)
    assert str(err.value) == (
        f"{path}: line 5: steps[1] (domain_cap): unknown key 'capp'; "
        "line 7: steps[2] (near_dedup): threshold: Input should be a finite number"
    )


def test_the_cli_prints_the_located_recipe_error_and_no_traceback(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distill.cli import app

    recipe = tmp_path / "r.yaml"
    recipe.write_text("steps:\n  - name: confidence\n    min: .inf\n")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["curate", str(tmp_path), "--out", str(out), "--recipe", str(recipe)]
    )
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit), result.output
    message = " ".join(result.output.split())
    assert (
        f"error: {recipe}:3: steps[0] (confidence): min: Input should be a finite number" in message
    )
