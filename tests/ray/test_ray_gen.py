"""gen and score on Ray give the local run's records (the session's 2-CPU cluster, the
embedded teacher on CPU, a few prompts and tokens so the whole file stays short); what
"the same" means, and the tolerance on log-probs, is in `tests.ray.compare`."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from distill.codec import decode_topk
from distill.engine import EngineConfig
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table, shard_paths
from distill.teachers.backend import TeacherUnavailableError
from tests.ray.compare import PROMPTS, assert_same_manifest, assert_same_records

pytestmark = pytest.mark.slow
RAY = EngineConfig(kind="ray")  # joins the session's cluster (`ray_cluster`)


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


def test_ray_gen_lists_failed_requests_and_stops_when_nothing_works(
    prompts: Path, tmp_path: Path, ray_cluster
) -> None:
    """An API teacher nobody answers (a closed loopback port): each replica's failed rows
    reach failed.jsonl, and the run stops as a local one does, with no record written."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: connections are refused
    out = tmp_path / "out"
    with pytest.raises(TeacherUnavailableError, match="requests failed so far, none succeeded"):
        generate_dataset(
            prompts, out, teacher=f"openai:m@http://127.0.0.1:{port}/v1",
            teacher_options={"token_ids": "none", "max_retries": 0, "timeout_s": 5},
            top_k=3, batch_size=2, shard_size=2, progress=False, engine=RAY,
        )  # fmt: skip
    failed = [json.loads(line) for line in (out / "failed.jsonl").read_text().splitlines()]
    assert len(failed) >= 2  # at least the first block, a batch's worth
    assert {entry["kind"] for entry in failed} == {"connection"}
    assert len({entry["record_id"] for entry in failed}) == len(failed)
    assert not shard_paths(out)


def test_ray_gen_writes_the_packed_codec_as_locally(
    prompts: Path, tmp_path: Path, ray_cluster
) -> None:
    """The replicas encode with the run's codec: a packed Ray run decodes to the packed
    local run's top-k (ids exact; log-probs within one 8-bit code step of the codec, as
    the two runs' float32 log-probs differ by ~1e-5 before encoding)."""
    for name, engine in [("local", EngineConfig()), ("ray", RAY)]:
        generate_dataset(
            prompts, tmp_path / name, top_k=5, sampling=SamplingParams(max_new_tokens=4),
            batch_size=2, shard_size=2, codec="packed", progress=False, engine=engine,
        )  # fmt: skip
    local, ray = (read_table(tmp_path / n).sort_by("record_id") for n in ("local", "ray"))
    assert load_manifest(tmp_path / "ray").codec == "packed"
    for column in ("record_id", "token_ids", "response_text"):
        assert ray.column(column).to_pylist() == local.column(column).to_pylist(), column
    ours, theirs = decode_topk(ray), decode_topk(local)
    assert ours.ids.tolist() == theirs.ids.tolist() and ours.ids.size > 0
    np.testing.assert_allclose(ours.logprobs, theirs.logprobs, atol=0.05, rtol=0)
    np.testing.assert_allclose(ours.tail, theirs.tail, atol=1e-3, rtol=0)
