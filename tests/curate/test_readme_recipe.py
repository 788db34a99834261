"""The recipe shown in README.md must stay a valid recipe."""

import json
import re
from pathlib import Path

from distill.curate import default_recipe, load_recipe

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_recipe_loads(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no yaml recipe block"
    bench = tmp_path / "bench.jsonl"
    bench.write_text(json.dumps({"question": " ".join(f"w{i}" for i in range(20))}) + "\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(block.group(1).replace("mmlu_test.jsonl", str(bench)))
    names = [step.name for step in load_recipe(recipe).steps]
    assert names[0] == "exact_dedup" and "mcq_verify" in names


def test_readme_default_recipe_is_the_default(tmp_path: Path) -> None:
    block = re.search(r"```yaml\n# default recipe\n(.*?)```", README.read_text(), re.S)
    assert block, "README.md has no '# default recipe' yaml block"
    recipe = tmp_path / "default.yaml"
    recipe.write_text(block.group(1))
    assert load_recipe(recipe).steps == default_recipe().steps
