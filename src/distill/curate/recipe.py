"""A recipe: the ordered list of curation steps and their parameters, from YAML or TOML.

    # recipe.yaml                      # recipe.toml
    steps:                             [[steps]]
      - name: exact_dedup              name = "exact_dedup"
      - name: truncated                [[steps]]
      - name: mcq_verify               name = "domain_cap"
      - name: domain_cap               cap = 500
        cap: 500                       caps = { math = 200 }
        caps: {math: 200}

Every model forbids unknown keys, so a typo ("capp: 500") is an error naming the file,
the step and the key rather than a silently ignored setting; in a YAML recipe the error
also gives the line (FILE:LINE: steps[I] (STEP): KEY: problem).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from distill.curate.balance import DomainCap
from distill.curate.dedup import ExactDedup, NearDedup
from distill.curate.mcq import McqVerify
from distill.curate.steps import STEP_TYPES, StepConfig
from distill.curate.truncated import DropTruncated


class RecipeError(ValueError):
    """A recipe file that can't be used: names the file, the step and the key."""


class Recipe(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: list[StepConfig] = Field(description="applied in order to the surviving rows")
    description: str = ""


def default_recipe(domain_cap: int | None = 10_000, seed: int = 0) -> Recipe:
    """exact dedup -> near-dedup prompts -> drop truncated -> verify MCQ answers -> cap
    each domain.

    `near_dedup` runs at its measured defaults (field=prompt, word 1-grams, J >= 0.45):
    exact dedup alone misses a question asked twice with a few words changed, which is what
    skews a distillation set; the false positives it adds are in docs/benchmarks.md.
    """
    return Recipe(
        steps=[
            ExactDedup(),
            NearDedup(),
            DropTruncated(),
            McqVerify(),
            DomainCap(cap=domain_cap, seed=seed),
        ],
        description="default",
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RecipeError(f"{path}: not UTF-8 text (byte {exc.start + 1})") from None


def _toml_loads(path: Path) -> Any:
    import tomllib  # stdlib from 3.11, the oldest Python distill supports

    try:
        return tomllib.loads(_read_text(path))
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"{path}: not valid TOML: {exc}") from exc


Lines = dict[tuple[Any, ...], int]


def yaml_lines(text: str) -> Lines:
    """The 1-based line of each key path of a YAML document: ("steps", 1, "cap") -> 7."""
    lines: Lines = {}

    def walk(node: yaml.Node, where: tuple[Any, ...]) -> None:
        lines.setdefault(where, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                lines[(*where, key.value)] = key.start_mark.line + 1
                walk(value, (*where, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*where, index))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _read_mapping(path: Path) -> tuple[Any, Lines]:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        return _toml_loads(path), {}  # tomllib keeps no positions
    if suffix in (".yaml", ".yml"):
        try:
            text = _read_text(path)
            data = yaml.safe_load(text)
            return ({} if data is None else data), yaml_lines(text)
        except (yaml.YAMLError, RecursionError) as exc:
            raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    raise RecipeError(f"{path}: a recipe must be .yaml, .yml or .toml, not {suffix!r}")


def _line_of(lines: Lines, loc: tuple[Any, ...]) -> int | None:
    """The line of `loc`, or of its nearest enclosing key that has one."""
    for end in range(len(loc), 0, -1):
        key = tuple(str(part) if not isinstance(part, int) else part for part in loc[:end])
        if key in lines:
            return lines[key]
    return None


def _located(path: Path, lines: Lines, problems: list[tuple[tuple[Any, ...], str]]) -> str:
    """FILE:LINE: problem for one problem; FILE: line N: p1; line M: p2 for several."""
    found = [(_line_of(lines, loc), text) for loc, text in problems]
    if len(found) == 1 and found[0][0] is not None:
        return f"{path}:{found[0][0]}: {found[0][1]}"
    return f"{path}: " + "; ".join(f"line {n}: {t}" if n else t for n, t in found)


def _check_step_names(path: Path, data: Any, lines: Lines) -> None:
    """Name an unknown step plainly (pydantic's union error is hard to read)."""
    if not isinstance(data, dict):
        kinds = {list: "a list", str: "text", int: "a number", float: "a number", bool: "a boolean"}
        kind = kinds.get(type(data), f"a {type(data).__name__}")
        raise RecipeError(f"{path}: a recipe is a mapping with a 'steps' list, not {kind}")
    if not isinstance(data.get("steps"), list):
        return  # pydantic reports the shape problem
    for index, step in enumerate(data["steps"]):
        at = ("steps", index, "name")
        if not isinstance(step, dict) or "name" not in step:
            problem = f"steps[{index}] needs a 'name' (one of {_known()})"
            raise RecipeError(_located(path, lines, [(at, problem)]))
        if not isinstance(step["name"], str):
            problem = f"steps[{index}]: 'name' must be text (one of {_known()})"
            raise RecipeError(_located(path, lines, [(at, problem)]))
        if step["name"] not in STEP_TYPES:
            close = difflib.get_close_matches(str(step["name"]), STEP_TYPES, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problem = f"steps[{index}]: unknown step {step['name']!r} (known: {_known()}){hint}"
            raise RecipeError(_located(path, lines, [(at, problem)]))


def _known() -> str:
    return ", ".join(sorted(STEP_TYPES))


def _describe(error: dict[str, Any]) -> str:
    # loc looks like ("steps", 3, "domain_cap", "capp"); say "steps[3] (domain_cap): 'capp'".
    loc = list(error["loc"])
    where = ""
    if len(loc) >= 2 and loc[0] == "steps" and isinstance(loc[1], int):
        where = f"steps[{loc[1]}]"
        if len(loc) >= 3 and loc[2] in STEP_TYPES:
            where += f" ({loc[2]})"
        loc = loc[3:]
    key = ".".join(str(part) for part in loc)
    if error["type"] == "extra_forbidden":
        return f"{where + ': ' if where else ''}unknown key {key!r}"
    return f"{where + ': ' if where else ''}{key + ': ' if key else ''}{error['msg']}"


def recipe_from_dict(
    data: Any, source: str | Path = "<recipe>", lines: Lines | None = None
) -> Recipe:
    """The recipe in `data`; `lines` (from `yaml_lines`) puts line numbers in the errors."""
    path, lines = Path(source), lines or {}
    _check_step_names(path, data, lines)
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        problems = [(_data_loc(e["loc"]), _describe(e)) for e in exc.errors()]
        raise RecipeError(_located(path, lines, problems)) from exc


def _data_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic puts the union's tag in the path: ("steps", 1, "domain_cap", "cap").
    if len(loc) >= 3 and loc[0] == "steps" and loc[2] in STEP_TYPES:
        return (*loc[:2], *loc[3:])
    return tuple(loc)


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise RecipeError(f"{path}: recipe file not found")
    data, lines = _read_mapping(path)
    return recipe_from_dict(data, path, lines)
