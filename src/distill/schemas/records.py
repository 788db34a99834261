"""Pydantic models for one teacher record and the teacher that made it.

The Arrow schema in `distill.schemas.arrow` mirrors these models field for field;
`tests/schemas/test_arrow.py` checks the two never drift apart.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field


class LogprobsMode(StrEnum):
    """Which distribution the stored log-probs describe."""

    RAW = "raw"  # log_softmax of the model's logits, before temperature / top-p
    PROCESSED = "processed"  # after the sampler's logits processors


class FinishReason(StrEnum):
    STOP = "stop"  # an end-of-sequence token was sampled
    LENGTH = "length"  # max_new_tokens reached: the response is truncated


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: str
    content: str


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    temperature: float = Field(0.0, ge=0.0, description="0 means greedy decoding")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_new_tokens: int = Field(256, ge=1)
    seed: int = 0
    n: int = Field(1, ge=1, description="samples per prompt")


class TeacherInfo(BaseModel):
    """Everything a consumer must know to trust and reuse the stored log-probs."""

    model_config = ConfigDict(extra="forbid")
    model_id: str
    revision: str = Field(description="sha256 of the weights file, or a hub revision")
    backend: str = Field(description="hf | vllm | openai")
    tokenizer_hash: str
    vocab_size: int
    chat_template_hash: str
    logprobs_mode: LogprobsMode = LogprobsMode.RAW
    top_k: int
    sampling: SamplingParams

    @property
    def teacher_id(self) -> str:
        """Short stable name used in record keys: backend, model and weights revision."""
        return f"{self.backend}:{self.model_id}@{self.revision[:12]}"


class TeacherRecord(BaseModel):
    """One sampled response with its per-token top-k teacher distribution."""

    model_config = ConfigDict(extra="forbid")
    record_id: str
    prompt_id: str
    sample_index: int
    teacher_id: str
    run_id: str
    created_at: datetime
    source_file: str
    source_row: int
    domain: str | None = None
    reference: str | None = None
    messages: list[Message]
    prompt_token_ids: list[int]
    response_text: str
    token_ids: list[int]
    topk_ids: list[list[int]]
    topk_logprobs: list[list[float]]
    sampled_logprob: list[float]
    tail_mass: list[float]
    finish_reason: FinishReason
    teacher: TeacherInfo


def make_record_id(prompt_id: str, sample_index: int, teacher_id: str) -> str:
    """The resume key of every backend: same prompt, sample and teacher -> same id."""
    key = f"{prompt_id}\x1f{sample_index}\x1f{teacher_id}".encode()
    return hashlib.sha256(key).hexdigest()[:24]
