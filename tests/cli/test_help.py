"""The CLI explains itself: `--version`, `curate --help`, the default recipe, every help."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import pytest
import typer.core
import typer.main
import yaml
from typer.testing import CliRunner

from distill.cli import app
from distill.curate import default_recipe, load_recipe
from distill.curate.steps import STEP_TYPES

runner = CliRunner()


def test_version_prints_the_installed_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0, result.output
    assert result.output == f"distill {importlib.metadata.version('distill')}\n"


def test_print_default_recipe_writes_yaml_that_loads_back_into_the_default_recipe(
    tmp_path: Path,
) -> None:
    result = runner.invoke(app, ["curate", "--print-default-recipe"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "recipe.yaml"
    path.write_text(result.stdout)
    assert load_recipe(path) == default_recipe()
    assert [step["name"] for step in yaml.safe_load(result.stdout)["steps"]] == [
        "exact_dedup",
        "near_dedup",
        "truncated",
        "mcq_verify",
        "domain_cap",
    ]


def test_curate_help_lists_every_registered_step_and_how_to_print_the_default_recipe() -> None:
    result = runner.invoke(app, ["curate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = result.output.split("Steps a recipe can name:")[1].split(".")[0]
    assert sorted(name.strip() for name in listed.replace("\n", " ").split(",")) == sorted(
        STEP_TYPES
    )
    assert "distill curate --print-default-recipe" in result.output


def help_text(*verb: str) -> str:
    """A verb's `--help`, its words joined by single spaces and the table borders dropped."""
    result = runner.invoke(app, [*verb, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return " ".join(result.output.replace("│", " ").split())


def test_alpha_help_says_it_weighs_the_kd_term_against_the_textbook_formula() -> None:
    text = help_text("train").split("--alpha ")[1].split("--divergence <")[0]
    assert "weighs the KD term, not cross-entropy" in text
    assert "loss = alpha*T^2*KL + (1-alpha)*CE" in text
    assert "textbook L = a*CE + (1-a)*T^2*KL" in text and "its a is 1-alpha here" in text
    assert "[default: 0.5]" in text


def test_every_verb_explains_every_option_in_its_help() -> None:
    """Every registered verb (a new one is covered by itself): `--help` exits 0 and shows
    each option and argument with help text, and no parameter is bare."""
    group = typer.main.get_command(app)
    assert isinstance(group, typer.core.TyperGroup)
    verbs = [(), *((name,) for name in group.commands)]
    assert len(verbs) > 10  # the app's verbs were found, not an empty group
    for verb in verbs:
        command = group.commands[verb[0]] if verb else group
        text = help_text(*verb)
        for param in command.params:
            words = (getattr(param, "help", None) or "").split()
            assert words, f"distill {' '.join(verb)}: {param.name} has no help text"
            assert " ".join(words[:3]) in text, f"distill {' '.join(verb)}: {param.name}"
            if isinstance(param, typer.core.TyperOption):
                assert param.opts[0] in text
                # the default is shown, or the help says it (a default that depends on the teacher)
                assert param.show_default is not False or "(default:" in param.help


VERBS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


@pytest.mark.parametrize("verb", VERBS)
def test_each_registered_verb_has_help_with_readable_metavars(verb: str) -> None:
    """One case per verb the app registers: `--help` exits 0, names the verb's usage, and no
    argument prints as a Python type (`<list[Path]>`, `{dataset}`)."""
    text = help_text(verb)
    usage = text.split("Usage: ")[1].split(" ", 2)[2].split("  ")[0]
    assert text.split("Usage: ")[1].split()[1] == verb
    assert "{" not in usage and "[OPTIONS]" in usage, usage
    assert re.search(r"<(path|str|int|float|bool|list\[)", text) is None, text
