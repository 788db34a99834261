"""gen and score on Ray give the local run's records (the session's 2-CPU cluster, the
embedded teacher on CPU, a few prompts and tokens so the whole file stays short).

Same record ids, prompt and response token ids, texts and top-k ids; the log-probs agree
to 1e-4. Why not exactly: a replica answers its own block (one shard's items), so a row
is batched with other rows than locally and sits under other left padding; the padded
matmuls sum in another order, which moves float32 log-probs by ~1e-5 (measured: 1.1e-5)
and, greedy, never flips a token at these margins.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from distill.engine import EngineConfig
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table

pytestmark = pytest.mark.slow
RAY = EngineConfig(kind="ray")  # joins the session's cluster (`ray_cluster`)
TOLERANCE = 1e-4
PROMPTS = ["Name a colour.", "What is 2 + 2?", "Say hello in French.", "Count to three."]
EXACT = ["record_id", "prompt_token_ids", "token_ids", "response_text", "finish_reason"]


def sorted_rows(out: Path) -> pa.Table:
    return read_table(out).sort_by("record_id")


def assert_same_records(local: Path, ray: Path) -> None:
    a, b = sorted_rows(local), sorted_rows(ray)
    assert a.num_rows == b.num_rows > 0
    for column in [*EXACT, "topk_ids"]:
        assert a.column(column).to_pylist() == b.column(column).to_pylist(), column
    for column in ["topk_logprobs", "sampled_logprob", "tail_mass"]:
        left = np.concatenate([np.ravel(v) for v in a.column(column).to_pylist()])
        right = np.concatenate([np.ravel(v) for v in b.column(column).to_pylist()])
        np.testing.assert_allclose(left, right, atol=TOLERANCE, rtol=0)


def assert_same_manifest(local: Path, ray: Path) -> None:
    a, b = load_manifest(local), load_manifest(ray)
    assert a.counts == b.counts
    assert a.teachers == b.teachers and a.params == b.params and a.codec == b.codec
    assert sorted(s.rows for s in a.shards) == sorted(s.rows for s in b.shards)
    assert set(type(a).model_fields) == set(type(b).model_fields)
    run_a, run_b = a.stats["runs"][-1], b.stats["runs"][-1]
    assert {k: v for k, v in run_a.items() if k != "run_id"} == {
        k: v for k, v in run_b.items() if k != "run_id"
    }


@pytest.fixture(scope="module")
def prompts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("prompts") / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def generated(prompts: Path, tmp_path_factory: pytest.TempPathFactory, ray_cluster) -> Path:
    """The local and the Ray run of one gen command, side by side."""
    root = tmp_path_factory.mktemp("gen")
    for name, engine in [("local", EngineConfig()), ("ray", RAY)]:
        generate_dataset(
            prompts,
            root / name,
            top_k=5,
            sampling=SamplingParams(max_new_tokens=4),
            batch_size=2,
            shard_size=2,
            progress=False,
            engine=engine,
        )
    return root


def test_ray_gen_writes_the_local_records_and_manifest(generated: Path) -> None:
    assert_same_records(generated / "local", generated / "ray")
    assert_same_manifest(generated / "local", generated / "ray")
    shards = [s.file for s in load_manifest(generated / "ray").shards]
    assert shards == ["data/part-00000.parquet", "data/part-00001.parquet"]
    assert (generated / "ray" / "failed.jsonl").read_text() == ""


def test_ray_gen_rerun_skips_every_record_written(prompts: Path, generated: Path) -> None:
    before = load_manifest(generated / "ray").shards
    result = generate_dataset(
        prompts,
        generated / "ray",
        top_k=5,
        sampling=SamplingParams(max_new_tokens=4),
        batch_size=2,
        shard_size=2,
        progress=False,
        engine=RAY,
    )
    assert (result.records_written, result.records_skipped_existing) == (0, len(PROMPTS))
    assert load_manifest(generated / "ray").shards == before


def test_ray_score_writes_the_local_records(generated: Path, tmp_path: Path) -> None:
    """The local gen output re-scored, teacher-forced, by each engine."""
    for name, engine in [("local", EngineConfig()), ("ray", RAY)]:
        result = score_dataset(
            generated / "local",
            tmp_path / name,
            top_k=5,
            batch_size=2,
            shard_size=2,
            progress=False,
            engine=engine,
        )
        assert result.records_written == len(PROMPTS)
    assert_same_records(tmp_path / "local", tmp_path / "ray")
    assert_same_manifest(tmp_path / "local", tmp_path / "ray")
