"""Asking a model: prompts in, response texts out, greedy, batched.

`Answerer` is all the evaluation needs from a model, so a test passes a fake whose
responses it controls. `hf_answerer` is the real one: a transformers checkpoint on the
GPU when there is one (`device="auto"`), prompts sent through the model's chat template as
`distill gen` sends them, decoded greedily, the longest prompts batched together.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Answerer = Callable[[list[str]], list[str]]  # user prompts -> response texts, same order


class DecodeOptions(BaseModel):
    """How the models are run: response length, batching, device and weights dtype."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_new_tokens: int = Field(
        default=64,
        ge=1,
        description="longest response; the prompt asks for brief reasoning then 'Answer: X', "
        "so a model that reasons at length needs more (256 for a 7B instruct model)",
    )
    batch_size: int = Field(default=8, ge=1, description="prompts decoded at a time")
    device: str = Field(default="auto", description="auto (a GPU when present) | cpu | cuda:N")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="weights and compute; bfloat16 for large models on a GPU"
    )


def hf_answerer(model_dir: Path, options: DecodeOptions) -> Answerer:
    """Greedy responses of the checkpoint in `model_dir` (loaded once)."""
    import torch

    from distill.schemas import SamplingParams
    from distill.teachers.backend import encode_chat_ids
    from distill.teachers.hf_teacher import generate_batch, load_hf_teacher

    model = load_hf_teacher(
        Path(model_dir), model_id=Path(model_dir).name, revision="eval",
        dtype=getattr(torch, options.dtype), device=options.device,
    )  # fmt: skip
    sampling = SamplingParams(temperature=0.0, max_new_tokens=options.max_new_tokens)

    def encode(prompt: str) -> list[int]:
        messages = [{"role": "user", "content": prompt}]
        if getattr(model.tokenizer, "chat_template", None):
            return encode_chat_ids(model.tokenizer, messages)
        return model.tokenizer(prompt + "\n")["input_ids"]  # a base model: plain text

    def answer(prompts: list[str]) -> list[str]:
        ids = [encode(prompt) for prompt in prompts]
        # Similar lengths together: less padding to prefill and decode.
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        texts: list[str] = [""] * len(ids)
        for start in range(0, len(order), options.batch_size):
            chunk = order[start : start + options.batch_size]
            gens = generate_batch(
                model, [ids[i] for i in chunk], sampling, top_k=1, seeds=[0] * len(chunk),
                capture=False,
            )  # fmt: skip
            for i, gen in zip(chunk, gens, strict=True):
                texts[i] = model.decode(gen.token_ids)
        return texts

    return answer
