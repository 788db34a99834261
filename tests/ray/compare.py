"""What "the same records" means between a local and a Ray run of gen or score.

Same record ids, prompt and response token ids, texts, finish reasons and top-k ids; the
log-probs (top-k, sampled, tail mass) agree to 1e-4. Why not exactly: a replica answers its
own block (one shard's items), so a row is batched with other rows than locally and sits
under other left padding; the padded matmuls sum in another order, which moves float32
log-probs by ~1e-5 (measured here: 1.1e-5 at most) and, greedy, flips no token at these
margins. The manifests hold the same counts, teachers, params and per-run tallies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.store import load_manifest, read_table

TOLERANCE = 1e-4
PROMPTS = ["Name a colour.", "What is 2 + 2?", "Say hello in French.", "Count to three."]
EXACT = ["record_id", "prompt_token_ids", "token_ids", "response_text", "finish_reason"]


def sorted_rows(out: Path) -> pa.Table:
    return read_table(out).sort_by("record_id")


def assert_same_records(local: Path, ray: Path, within: bool = False) -> None:
    """`within`: the Ray run covers part of the local run's prompts; compare those."""
    a, b = sorted_rows(local), sorted_rows(ray)
    if within:
        a = a.filter(pc.is_in(a.column("record_id"), b.column("record_id")))
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


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    return path


def gen_command(prompts: Path, out: Path, *options: str) -> list[str]:
    """`distill gen` as a subprocess driver: the settings every Ray test uses."""
    return [
        sys.executable, "-m", "distill.cli", "gen", str(prompts), "--out", str(out),
        "--max-new-tokens", "4", "--top-k", "5", "--batch-size", "1", "--shard-size", "1",
        *options,
    ]  # fmt: skip


def local_gen(prompts: Path, out: Path) -> Path:
    """The same gen in this process, on the local engine: what a Ray run must equal."""
    from distill.gen.runner import generate_dataset
    from distill.schemas import SamplingParams

    generate_dataset(
        prompts, out, top_k=5, sampling=SamplingParams(max_new_tokens=4), batch_size=1,
        shard_size=1, progress=False,
    )  # fmt: skip
    return out
