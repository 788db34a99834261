"""The streaming runner decides and writes exactly what the in-memory reference runner does.

Every registered step (each config of `example_configs`, so a new step is covered as soon as
test_codec_parity.py requires an example for it), the default recipe and a recipe mixing
global and row-local steps run on the SmolLM2 parity fixture, on both codecs, through
`distill.curate.curate_dataset` with 7-row batches (so batches split prompts' sample groups,
duplicates and domains) and through tests/curate/reference_runner.py, which reads the whole
table and runs each step's `decide` on it. The kept and rejected shards must be byte-identical
(so the same record ids, order, reasons and details), and the manifests and results equal
except for the per-run fields (`created_at`, each step's `seconds`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from distill.curate import curate_dataset
from distill.curate.base import Step
from distill.curate.dedup import SemanticDedup
from distill.curate.passes import plan_passes
from distill.curate.recipe import Recipe, default_recipe, recipe_from_dict
from distill.curate.steps import STEP_CLASSES, step_name
from distill.store import shard_paths
from distill.store.lineage import default_rejected_dir
from tests.curate import test_codec_parity as parity
from tests.curate.reference_runner import reference_curate_dataset
from tests.curate.test_codec_parity import (
    CODECS,
    SMOLLM2_LETTERS,
    LengthJudge,
    _step_cases,
    example_configs,
)
from tests.factories import write_fake_dataset

BATCH_ROWS = 7
# The parity fixture's datasets (both codecs) and its embeddings cache, shared.
datasets = parity.datasets
cached_embeddings = parity.cached_embeddings


class CountingJudge(LengthJudge):
    """LengthJudge that counts the rows it is asked to score."""

    def __init__(self) -> None:
        self.rows = 0

    def generate(self, prompts, sampling, top_k, seeds, messages=None):
        self.rows += len(prompts)
        return super().generate(prompts, sampling, top_k, seeds, messages)


def _without_run_fields(manifest: dict[str, Any]) -> dict[str, Any]:
    manifest = {k: v for k, v in manifest.items() if k != "created_at"}
    manifest["steps"] = [{k: v for k, v in s.items() if k != "seconds"} for s in manifest["steps"]]
    # the two outputs link each other by folder name, which differs from the reference's
    links = ("rejected_dir", "kept_dir")
    manifest["params"] = {k: v for k, v in manifest["params"].items() if k not in links}
    return manifest


def _result_fields(result: Any) -> dict[str, Any]:
    data = result.model_dump(mode="json", exclude={"kept_dir", "rejected_dir"})
    data["steps"] = [{k: v for k, v in s.items() if k != "seconds"} for s in data["steps"]]
    for key in ("kept_manifest", "rejected_manifest"):
        data[key] = _without_run_fields(data[key])
    return data


def assert_same_as_reference(source: Path, out: Path, recipe: Recipe) -> None:
    streamed = curate_dataset(source, out / "streamed", recipe, batch_rows=BATCH_ROWS)
    reference = reference_curate_dataset(source, out / "reference", recipe)
    for sub in ("", "-rejected"):
        mine = {p.name: p.read_bytes() for p in shard_paths(out / f"streamed{sub}")}
        theirs = {p.name: p.read_bytes() for p in shard_paths(out / f"reference{sub}")}
        assert mine.keys() == theirs.keys() and mine == theirs, f"{sub or 'kept'} shards differ"
        manifests = [json.loads((out / f"{d}{sub}" / "manifest.json").read_text()) for d in
                     ("streamed", "reference")]  # fmt: skip
        assert _without_run_fields(manifests[0]) == _without_run_fields(manifests[1])
    assert _result_fields(streamed) == _result_fields(reference)


@pytest.fixture
def fakes(monkeypatch, cached_embeddings) -> CountingJudge:
    judge = CountingJudge()
    monkeypatch.setattr("distill.teachers.specs.load_teacher", lambda spec, top_k=20: judge)
    monkeypatch.setattr(SemanticDedup, "embeddings", cached_embeddings)
    return judge


def test_every_registered_step_is_covered() -> None:
    assert {step_name(cls) for cls in STEP_CLASSES} == set(example_configs(Path("b")))


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("name", "index"), _step_cases())
def test_each_step_streams_like_the_reference(
    name: str,
    index: int,
    codec: str,
    datasets,
    fakes,
    tmp_path: Path,
) -> None:
    config = {"name": name, **example_configs(datasets["benchmark"])[name][index]}
    if name == "confidence" and config["signal"] == "answer_logprob":
        config["letter_tokens"] = SMOLLM2_LETTERS
    recipe = recipe_from_dict({"steps": [config]})
    assert_same_as_reference(datasets[codec], tmp_path, recipe)


MIXED = {
    "steps": [
        {"name": "truncated"},
        {"name": "exact_dedup"},
        {"name": "confidence", "signal": "self_consistency", "min": 0.5},
        {"name": "length", "min_tokens": 5},
        {"name": "near_dedup", "keep": "correct"},
        {"name": "mcq_verify"},
        {"name": "llm_judge", "teacher": "fake:judge", "min_score": 2},
        {"name": "select_teacher", "keep": "most_confident"},
        {"name": "refusal", "phrases": ["answer: c"]},
        {"name": "domain_token_budget", "budget": 40},
        {"name": "domain_cap", "cap": 1},
    ]
}


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize("recipe", ["default", "mixed"])
def test_recipes_stream_like_the_reference(
    recipe: str,
    codec: str,
    datasets,
    fakes,
    tmp_path: Path,
) -> None:
    chosen = default_recipe(domain_cap=3) if recipe == "default" else recipe_from_dict(MIXED)
    assert_same_as_reference(datasets[codec], tmp_path, chosen)


def test_the_judge_sees_no_row_an_earlier_step_drops(datasets, fakes, tmp_path: Path) -> None:
    recipe = recipe_from_dict(MIXED)
    curate_dataset(datasets["plain"], tmp_path / "streamed", recipe, batch_rows=BATCH_ROWS)
    streamed, fakes.rows = fakes.rows, 0
    result = reference_curate_dataset(datasets["plain"], tmp_path / "reference", recipe)
    judged = next(s for s in result.steps if s.step == "llm_judge").input
    assert streamed == fakes.rows == judged > 0


def test_passes_split_only_before_an_expensive_step_after_a_global_one() -> None:
    steps: list[Step] = list(recipe_from_dict(MIXED).steps)
    # exact_dedup (global) precedes llm_judge (index 6): the judge starts a second pass.
    assert plan_passes(steps) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    assert plan_passes(list(default_recipe().steps)) == [[0, 1, 2, 3, 4]]
    row_only = recipe_from_dict({"steps": [{"name": "truncated"}, {"name": "llm_judge"}]})
    assert plan_passes(list(row_only.steps)) == [[0, 1]]


def test_batch_size_does_not_change_the_output(datasets, fakes, tmp_path: Path) -> None:
    recipe = default_recipe(domain_cap=3)
    outputs = []
    for rows in (1, 50, 4096):
        out = tmp_path / str(rows)
        curate_dataset(datasets["packed"], out, recipe, batch_rows=rows)
        outputs.append({p.name: p.read_bytes() for sub in (out, default_rejected_dir(out))
                        for p in shard_paths(sub)})  # fmt: skip
    assert outputs[0] == outputs[1] == outputs[2]
    with pytest.raises(ValueError, match="batch_rows"):
        curate_dataset(datasets["packed"], tmp_path / "zero", recipe, batch_rows=0)


def test_the_cli_takes_a_batch_size(datasets, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distill.cli import app

    outputs = []
    for extra in ([], ["--batch-rows", "3"]):
        out = tmp_path / f"out{len(extra)}"
        result = CliRunner().invoke(
            app, ["curate", str(datasets["plain"]), "--out", str(out), *extra]
        )
        assert result.exit_code == 0, result.output
        outputs.append({p.name: p.read_bytes() for p in shard_paths(out)})
    assert outputs[0] == outputs[1]
    bad = CliRunner().invoke(
        app, ["curate", str(datasets["plain"]), "--out", "x", "--batch-rows", "0"]
    )
    assert bad.exit_code == 2


@pytest.mark.parametrize(("name", "index"), _step_cases())
def test_each_step_on_no_rows_summarizes_like_the_reference(
    name: str, index: int, datasets, fakes, tmp_path: Path
) -> None:
    """A step no row reaches still reports the summary of nothing (e.g. an empty accuracy)."""
    config = {"name": name, **example_configs(datasets["benchmark"])[name][index]}
    if name == "confidence" and config["signal"] == "answer_logprob":
        config["letter_tokens"] = SMOLLM2_LETTERS
    everything_truncated = {"name": "length", "min_tokens": 10_000}
    recipe = recipe_from_dict({"steps": [everything_truncated, config]})
    assert_same_as_reference(datasets["packed"], tmp_path, recipe)
    write_fake_dataset(tmp_path / "empty", [])
    assert_same_as_reference(tmp_path / "empty", tmp_path / "from_empty", recipe)
