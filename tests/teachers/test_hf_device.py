"""The transformers teacher on any device: the same top-k and the same draws on a GPU as
on the CPU. A tiny random Llama keeps this self-contained (no checkpoint, no tokenizer
file), so it runs in CI on the CPU and, where there is one, on a GPU."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from distill.schemas import SamplingParams
from distill.teachers.hf_teacher import HFTeacher, generate_batch
from distill.teachers.specs import HFOptions, load_teacher

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
STOP = 1
PROMPTS = [[5, 17, 33, 2, 9], [44, 3], [5, 17, 33, 2, 9], [70, 71, 72, 73, 74, 75, 76, 77]]


def tiny_teacher(device: str) -> HFTeacher:
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    return HFTeacher(
        model=model.to(device).eval(),
        tokenizer=SimpleNamespace(pad_token_id=0),
        model_id="tiny",
        revision="0" * 64,
        stop_ids=frozenset({STOP}),
    )


def _generate(device: str, targets: str = "topk"):
    sampling = SamplingParams(temperature=0.9, max_new_tokens=10, seed=0)
    seeds = [11, 12, 13, 14]
    return generate_batch(tiny_teacher(device), PROMPTS, sampling, 6, seeds, targets=targets)


@pytest.mark.parametrize("device", DEVICES)
def test_capture_on_device_matches_a_float64_forward_pass(device: str) -> None:
    reference = tiny_teacher("cpu").model.double()
    worst = 0.0
    for prompt, gen in zip(PROMPTS, _generate(device), strict=True):
        ids = torch.tensor([prompt + gen.token_ids])
        with torch.no_grad():
            logits = reference(input_ids=ids).logits[0]
        logprobs = torch.log_softmax(logits[len(prompt) - 1 : -1], dim=-1)
        stored = torch.tensor(gen.topk_logprobs, dtype=torch.float64)
        gathered = logprobs.gather(-1, torch.tensor(gen.topk_ids))
        worst = max(worst, (gathered - stored).abs().max().item())
        assert torch.allclose(gathered, stored, atol=1e-4, rtol=0)
        # the stored ids are the top-k: nothing outside them beats the k-th
        assert (logprobs.topk(6, -1).values[:, -1] - stored[:, -1]).abs().max() < 1e-4
        sampled = logprobs.gather(-1, torch.tensor(gen.token_ids)[:, None])[:, 0]
        assert torch.allclose(sampled, torch.tensor(gen.sampled_logprob).double(), atol=1e-4)
    print(f"{device}: max |stored - float64 reference| = {worst:.2e}")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
@pytest.mark.parametrize("targets", ["topk", "sampled"])
def test_gpu_draws_the_same_tokens_as_the_cpu(targets: str) -> None:
    """The per-row generators live on the CPU: a seed gives the same sample anywhere."""
    on_cpu, on_gpu = _generate("cpu", targets), _generate("cuda", targets)
    for a, b in zip(on_cpu, on_gpu, strict=True):
        assert a.token_ids == b.token_ids
        assert a.topk_ids == b.topk_ids


def test_hf_options_are_checked_and_half_precision_is_another_teacher() -> None:
    with pytest.raises(ValueError, match="devcie"):
        load_teacher("hf:embedded", {"devcie": "cuda"})
    assert HFOptions().device == "auto"
    with pytest.raises(ValueError, match="device='tpu'"):
        HFOptions(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            load_teacher("hf:embedded", {"device": "cuda"})
    fp32 = load_teacher("hf:embedded")
    bf16 = load_teacher("hf:embedded", {"dtype": "bfloat16"})
    sampling = SamplingParams()
    assert fp32.info(4, sampling).teacher_id != bf16.info(4, sampling).teacher_id
    assert "+bfloat16" in bf16.info(4, sampling).model_id
    assert next(bf16.model.parameters()).dtype == torch.bfloat16
