"""curate on Ray decides and writes what the local engine does.

Every registered step (each config of `example_configs`), on both codecs, the default recipe
plus `near_dedup` on an input whose near-copies are spread over shards, and a recipe where a
global step precedes the judge run once locally and once on the session's 2-CPU Ray cluster
(`ray_cluster`), on the SmolLM2 parity rows cut into 60-row shards. The kept and rejected
rows (record ids, every column, reject step, reason and details, in order) and the
manifests' steps and counts must be equal; only the shard boundaries differ (a Ray worker
writes one shard per input shard), and the per-run fields.

The judge is a `LengthJudge` carried by the step (`LlmJudge.using`), since a monkeypatched
`load_teacher` would not reach the workers' processes.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from distill.curate import curate_dataset
from distill.curate.base import Step
from distill.curate.dedup import SemanticDedup
from distill.curate.llm_judge import LlmJudge
from distill.curate.recipe import Recipe, default_recipe, recipe_from_dict
from distill.engine import EngineConfig
from distill.store import load_manifest, read_table
from tests.curate import test_codec_parity as parity
from tests.curate.test_codec_parity import (
    CODECS,
    SMOLLM2_LETTERS,
    LengthJudge,
    _rows,
    _step_cases,
    example_configs,
)
from tests.factories import write_table_dataset

RAY = EngineConfig(kind="ray")
BATCH_ROWS = 7
datasets = parity.datasets  # for the benchmark file


@pytest.fixture(scope="module")
def sharded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The parity rows in 60-row shards (several per run), and a copy with near-copies of
    early prompts appended at the end, so a near-duplicate and its original sit in
    different shards."""
    from distill.schemas import RECORD_SCHEMA

    rows = _rows()
    root = tmp_path_factory.mktemp("ray")
    out = {}
    for codec in CODECS:
        out[codec] = root / codec
        write_table_dataset(out[codec], pa.Table.from_pylist(rows, schema=RECORD_SCHEMA), codec,
                            rows_per_shard=60)  # fmt: skip
    copies = []
    for n, row in enumerate(rows[:: max(len(rows) // 40, 1)][:40]):
        text = row["messages"][-1]["content"]
        edited = f"  {text.upper()}  please" if n % 2 else text.replace(" ", "  ") + " ok"
        messages = [*row["messages"][:-1], {**row["messages"][-1], "content": edited}]
        copies.append({**row, "messages": messages, "prompt_id": f"copy-{n}",
                       "record_id": f"copy-{n}-{row['record_id']}"})  # fmt: skip
    table = pa.Table.from_pylist(rows + copies, schema=RECORD_SCHEMA)
    out["near"] = root / "near"
    write_table_dataset(out["near"], table, "packed", rows_per_shard=60)
    return out


def word_embeddings(self: SemanticDedup, texts: list[str]) -> np.ndarray:
    """Unit bags of casefolded words hashed into 64 dimensions: texts differing in case and
    spacing only (the fixture's near-copies) embed alike, and no model is loaded."""
    vectors = np.zeros((len(texts), 64), dtype=np.float32)
    for row, text in enumerate(texts):
        for word in text.casefold().split():
            vectors[row, zlib.crc32(word.encode()) % 64] += 1.0
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def embeddings(monkeypatch) -> None:
    # semantic_dedup embeds on the driver, as locally: the patch reaches it.
    monkeypatch.setattr(SemanticDedup, "embeddings", word_embeddings)


def with_judge(recipe: Recipe) -> Recipe:
    steps: list[Step] = [
        step.using(LengthJudge()) if isinstance(step, LlmJudge) else step for step in recipe.steps
    ]
    return recipe.model_copy(update={"steps": steps})


def _manifest(path: Path) -> dict[str, Any]:
    manifest = json.loads((path / "manifest.json").read_text())
    manifest.pop("created_at")
    manifest.pop("shards")
    for step in manifest["steps"]:
        step.pop("seconds")
    return manifest


def assert_same_on_ray(source: Path, out: Path, recipe: Recipe) -> None:
    recipe = with_judge(recipe)
    # The same folder name under each: the manifests link kept and rejected by name.
    local = curate_dataset(source, out / "local" / "out", recipe, batch_rows=BATCH_ROWS)
    ray = curate_dataset(source, out / "ray" / "out", recipe, batch_rows=BATCH_ROWS, engine=RAY)
    for kept_dir, name in ((local.kept_dir, "kept"), (local.rejected_dir, "rejected")):
        mine = ray.kept_dir if name == "kept" else ray.rejected_dir
        theirs, ours = read_table(kept_dir), read_table(mine)
        assert ours.column("record_id").to_pylist() == theirs.column("record_id").to_pylist()
        assert ours.equals(theirs), f"{name} rows differ"
        assert _manifest(mine) == _manifest(kept_dir)
        assert load_manifest(mine).counts == load_manifest(kept_dir).counts
    assert [s.model_dump(exclude={"seconds"}) for s in ray.steps] == [
        s.model_dump(exclude={"seconds"}) for s in local.steps
    ]


@pytest.mark.parametrize("codec", CODECS)
@pytest.mark.parametrize(("name", "index"), _step_cases())
def test_each_step_on_ray_as_locally(
    name: str, index: int, codec: str, sharded, datasets, embeddings, ray_cluster, tmp_path: Path
) -> None:
    config = {"name": name, **example_configs(datasets["benchmark"])[name][index]}
    if name == "confidence" and config["signal"] == "answer_logprob":
        config["letter_tokens"] = SMOLLM2_LETTERS
    assert_same_on_ray(sharded[codec], tmp_path, recipe_from_dict({"steps": [config]}))
    kept, rejected = (
        load_manifest(tmp_path / "ray" / d).counts["rows"] for d in ("out", "out-rejected")
    )
    assert kept and rejected, f"{config}: keeps or drops nothing; not a test"


def test_near_copies_across_shards_on_ray_as_locally(sharded, ray_cluster, tmp_path: Path) -> None:
    """The default recipe (its near_dedup on prompts) plus a near_dedup on prompt and
    response in character 5-grams, keeping the most confident."""
    near = {"name": "near_dedup", "field": "both", "shingle": "char", "ngram": 5,
            "threshold": 0.3, "keep": "most_confident"}  # fmt: skip
    steps = [step.model_dump() for step in default_recipe(domain_cap=3).steps]
    assert_same_on_ray(sharded["near"], tmp_path, recipe_from_dict({"steps": [*steps, near]}))
    rejected = read_table(tmp_path / "ray" / "out-rejected")
    copies = [
        record_id
        for record_id, reason in zip(
            rejected.column("record_id").to_pylist(),
            rejected.column("reject_reason").to_pylist(),
            strict=True,
        )
        if reason == "near_duplicate" and record_id.startswith("copy-")
    ]
    assert len(copies) >= 20  # copies in the last shards of rows in the first ones


def test_a_global_step_before_the_judge_on_ray(sharded, ray_cluster, tmp_path: Path) -> None:
    from tests.curate.test_streaming_runner import MIXED

    assert_same_on_ray(sharded["plain"], tmp_path, recipe_from_dict(MIXED))


def test_engine_ray_without_ray_is_one_line_naming_the_extra(
    sharded, monkeypatch, tmp_path: Path
) -> None:
    import sys

    from typer.testing import CliRunner

    from distill.cli import app

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if absent
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app, ["curate", str(sharded["plain"]), "--out", str(out), "--engine", "ray"]
    )
    message = " ".join(result.output.split())
    assert result.exit_code == 2, result.output
    assert message == (
        "error: --engine ray needs Ray Data (ray is not installed): pip install 'distill[ray]'"
    )
    assert not out.exists()  # refused before --out was touched
    bad = CliRunner().invoke(
        app, ["curate", str(sharded["plain"]), "--out", str(out), "--ray-address", "auto"]
    )
    assert bad.exit_code == 2 and "--ray-address needs --engine ray" in bad.output


def test_the_cli_runs_curate_on_ray_as_locally(sharded, ray_cluster, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from distill.cli import app

    kept = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        args = ["curate", str(sharded["near"]), "--out", str(out), "--engine", engine]
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0, result.output
        kept[engine] = read_table(out).column("record_id").to_pylist()
    assert kept["ray"] == kept["local"] and kept["ray"]


def test_a_ray_run_redoes_the_job_on_its_own_out(sharded, ray_cluster, tmp_path: Path) -> None:
    """The local runner's claim serves both engines: a Ray run on the OUT of the same job
    (here run locally first) clears it and writes the same rows."""
    recipe = default_recipe(domain_cap=3)
    curate_dataset(sharded["packed"], tmp_path / "out", recipe)
    local = read_table(tmp_path / "out-rejected")
    curate_dataset(sharded["packed"], tmp_path / "out", recipe, engine=RAY)
    assert read_table(tmp_path / "out-rejected").equals(local)
    # A shard per input shard that kept a row, named as the input shard.
    kept = load_manifest(tmp_path / "out")
    assert {s.file for s in kept.shards} <= {
        s.file for s in load_manifest(sharded["packed"]).shards
    }
    assert sum(s.rows for s in kept.shards) == kept.counts["kept"] > 0


def test_ray_passes_put_every_expensive_step_first() -> None:
    from distill.curate.ray_keys import ray_passes
    from tests.curate.test_streaming_runner import MIXED

    steps = list(recipe_from_dict(MIXED).steps)
    # llm_judge (6) follows only row-local steps within its local pass, and starts one here.
    assert ray_passes(steps) == [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]
    judged = recipe_from_dict({"steps": [{"name": "truncated"}, {"name": "llm_judge"}]})
    assert ray_passes(list(judged.steps)) == [[0], [1]]


def test_steps_no_row_reaches_and_an_empty_input_on_ray(
    sharded, embeddings, ray_cluster, tmp_path: Path
) -> None:
    """Every row dropped by the first step: the later ones (both shuffled dedups, a
    driver-resolved balance and a judge) summarise nothing, as locally; and no rows at all."""
    from tests.factories import write_fake_dataset

    recipe = recipe_from_dict(
        {
            "steps": [
                {"name": "length", "min_tokens": 10_000},
                {"name": "exact_dedup"},
                {"name": "near_dedup"},
                {"name": "domain_cap", "cap": 1},
                {"name": "llm_judge", "teacher": "fake:judge"},
            ]
        }
    )
    assert_same_on_ray(sharded["plain"], tmp_path / "dropped", recipe)
    write_fake_dataset(tmp_path / "empty", [])
    assert_same_on_ray(tmp_path / "empty", tmp_path / "from_empty", recipe)
