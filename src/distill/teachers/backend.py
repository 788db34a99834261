"""What `distill gen` and `distill score` need from a teacher, whatever runs it
(transformers, vLLM, an API).

The resumable run (`distill.gen.run`) only talks to this protocol: it asks the backend for its
`TeacherInfo` (which keys the records and guards resume), tokenises each prompt with
`encode_chat`, and hands batches of token-id prompts to `generate`, one seed per row
(with the rows' chat messages too, for API backends that take messages, not ids).
A backend draws exactly one sample per row; `n` samples per prompt are n rows with n
seeds, so every (prompt, sample index) has its own record id and resumes on its own.

Streaming (optional): a backend whose requests are independent (an API) may also offer
`generate_stream(requests, sampling, top_k)`, taking `(tag, GenRequest)` pairs lazily and
yielding `(tag, Generation)` as each completes, in any order, so a slow request holds up
only itself and the window of requests in flight stays full across batch boundaries. The
run uses it when present (see `streams`); local backends (hf, vllm) batch, as padding and
the engine want.

Teacher forcing (`distill score`): `score` gets (prompt ids, response ids) pairs and returns,
per pair, the top-k at every response position with the response as `token_ids`. The
local backends can (hf: one forward pass, vllm: `prompt_logprobs`); one that can't (an API
returns log-probs of the tokens it generates, not of tokens it is given) raises
`CannotScoreError`. `score([], k)` does no work, so a caller can ask before writing anything.

Failures: a backend whose requests can fail one by one (an API) returns, for such a row,
a `Generation` with `failure` set and empty lists; the runner writes no record for it and
lists it in `failed.jsonl`, so a rerun retries it. Local backends never do. A failure that
would hit every row (bad key, unknown model) is raised as `TeacherUnavailableError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from distill.schemas import SamplingParams, TeacherInfo
from distill.schemas.manifest import TokenizerInfo


class TeacherUnavailableError(RuntimeError):
    """The teacher refuses every request (auth, unknown model, all requests failing): stop."""


class CannotScoreError(ValueError):
    """The backend can't teacher-force given tokens (`TeacherBackend.score`)."""


@dataclass(frozen=True)
class RequestFailure:
    """Why one row got no response after the backend's retries.

    `kind` is a short constant (it names the `failed_<kind>` count): timeout, connection,
    rate_limited, server_error, bad_request, bad_response. `reason` is the exception class,
    the HTTP status and a short message; it never holds request headers (the API key).
    """

    kind: str
    reason: str
    status: int | None = None


@dataclass
class Generation:
    """One response with its per-token capture (lists are one entry per response token).

    `text` is set by backends that get text back without token ids (an API with no
    tokenizer): the record is then a hard-label record, with empty token and top-k lists.
    """

    token_ids: list[int]
    topk_ids: list[list[int]]
    topk_logprobs: list[list[float]]
    sampled_logprob: list[float]
    tail_mass: list[float]
    finish_reason: str
    text: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    attempts: int = 1  # requests sent for this row (1 + the backend's retries)
    unmapped: int = 0  # returned tokens that could not be mapped to an id (dropped)
    failure: RequestFailure | None = None

    @classmethod
    def failed(cls, failure: RequestFailure, attempts: int) -> Generation:
        return cls([], [], [], [], [], "error", attempts=attempts, failure=failure)


@dataclass(frozen=True)
class GenRequest:
    """One row for `generate_stream`: what `generate` gets per row."""

    prompt_ids: list[int]
    seed: int
    messages: list[dict[str, str]] | None = None


Tag = TypeVar("Tag")


@runtime_checkable
class StreamingBackend(Protocol):
    """A backend that answers rows as they complete (see the module docstring)."""

    def generate_stream(
        self, requests: Iterable[tuple[Tag, GenRequest]], sampling: SamplingParams, top_k: int
    ) -> Iterator[tuple[Tag, Generation]]: ...


def streams(model: object) -> bool:
    """The run should use `generate_stream`: the backend has it, and its `generate` is not
    a subclass's override (a subclass that changes `generate` alone, to wrap or instrument
    it, keeps the batch path it changed)."""
    if not isinstance(model, StreamingBackend):
        return False
    mro = type(model).__mro__
    owner = next((k for k in mro if "generate" in vars(k)), None)
    stream_owner = next(k for k in mro if "generate_stream" in vars(k))
    return owner is None or issubclass(stream_owner, owner)


@runtime_checkable
class TeacherBackend(Protocol):
    """A teacher `distill gen` (and, with `score`, `distill score`) can run. See `HFTeacher`,
    `VLLMTeacher`, `OpenAITeacher`."""

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo: ...

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]: ...

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        top_k: int,
        seeds: list[int],
        messages: list[list[dict[str, str]]] | None = None,
    ) -> list[Generation]: ...

    def score(self, pairs: list[tuple[list[int], list[int]]], top_k: int) -> list[Generation]: ...

    def decode(self, token_ids: list[int]) -> str: ...

    def tokenizer_info(self) -> TokenizerInfo | None: ...


def encode_chat_ids(tokenizer: Any, messages: list[dict[str, str]]) -> list[int]:
    """The teacher's chat template applied to `messages`, with the generation prompt, as ids."""
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    if isinstance(ids, dict) or hasattr(ids, "input_ids"):
        ids = ids["input_ids"]
    return list(ids)


def tail_from_topk(topk_logprobs: list[float]) -> float:
    """Mass outside the top-k when the backend does not report it: 1 - sum(exp(top-k)),
    clamped at 0 (rounding in the engine can make the top-k sum exceed 1 slightly).

    Less precise than the transformers backend's logsumexp over the tail: when the top-k
    covers nearly all the mass, the subtraction leaves only float32 rounding noise.
    """
    import math

    return max(0.0, 1.0 - sum(math.exp(lp) for lp in topk_logprobs))
