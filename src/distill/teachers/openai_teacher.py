"""An OpenAI-compatible API as teacher: `--teacher openai:MODEL@BASE_URL`.

Requests go through the `openai` client's `AsyncOpenAI` (`pip install distill[api]`):
chat completions with `logprobs=True, top_logprobs=k`, at most `concurrency` in flight
(an `asyncio.Semaphore`), each with its own timeout. The run streams (`generate_stream`):
one event loop in a background thread for the whole run, the next request sent as soon as
one completes, so a stall or a Retry-After holds up its own row only
(`distill.teachers.request_window`); `generate` answers one batch, as before. Failed
requests (429, 5xx, timeouts, dropped connections) are retried by the client itself
(`max_retries`, exponential back-off that honours the server's Retry-After). A 200 whose
reply cannot be a record (a truncated or garbled body, NaN log-probs, missing top-k: see
`openai_replies`) is asked again here, up to the same `max_retries`. A request that still
fails becomes a failed `Generation` (its `RequestFailure` names the kind, status and
message): the runner lists it in failed.jsonl and a rerun retries it. Errors that every
request would hit stop the run at once: 401/403 (the key) and 404 (the model or URL), as
`TeacherUnavailableError`.
An httpx request hook counts each row's attempts (retries = attempts - 1).

The API key is read from the environment variable named by `--api-key-env NAME`; it is
never a CLI value and is never written to the manifest, the records or the logs.

Token ids, in order of exactness (`token_ids` option, "auto" picks the first that applies):
  * "vllm": the server is vLLM (it answers GET /version); we ask for
    `return_tokens_as_token_ids`, so every token comes back as "token_id:123": exact ids;
  * "tokenizer": token strings (or their bytes) are mapped to ids through the local
    tokenizer the user names (`tokenizer=DIR`), see `distill.teachers.token_strings`; a top-k
    entry that cannot be mapped is dropped and counted (`Generation.unmapped`), a sampled
    token that cannot be mapped fails the row (kind "unmapped_token");
  * "none": hard-label records (text only, no token or top-k lists); the manifest says
    `params.hard_labels = true` and KD must refuse such data.
APIs return at most 20 log-probs per token (api.openai.com refuses more), and no tail
mass: it is 1 - sum(exp(top-k)), clamped at 0, as for vLLM.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from distill.schemas import LogprobsMode, SamplingParams, TeacherInfo
from distill.schemas.manifest import TokenizerInfo
from distill.teachers.backend import (
    CannotScoreError,
    Generation,
    GenRequest,
    RequestFailure,
    Tag,
    encode_chat_ids,
)
from distill.teachers.openai_config import OpenAIConfig, parse_openai_target, resolve_mode
from distill.teachers.openai_replies import (
    BadResponse,
    classify_failure,
    not_json,
    parse_reply,
    vllm_token_id,
)
from distill.teachers.request_window import BackgroundLoop, cancel_others, stream_window
from distill.teachers.token_strings import TokenStringMap, build_token_map
from distill.tokenizer_info import chat_template_hash, describe_tokenizer, tokenizer_hash

OPENAI_MAX_TOP_LOGPROBS = 20
BAD_REPLY_BACKOFF_S = 0.5  # before asking again after a bad reply; doubles each time, to 8 s
# This row's attempt counter: each gathered request runs in its own task, hence its own context.
_ATTEMPTS: ContextVar[list[int] | None] = ContextVar("distill_attempts", default=None)
__all__ = ["OpenAIConfig", "OpenAITeacher", "load_openai_teacher", "parse_openai_target"]


@dataclass
class OpenAITeacher:
    model: str
    base_url: str
    api_key: str = field(repr=False)
    config: OpenAIConfig
    mode: str
    tokenizer: Any = None
    _token_map: TokenStringMap | None = field(default=None, repr=False)

    @property
    def hard_labels(self) -> bool:
        return self.mode == "none"

    def info(self, top_k: int, sampling: SamplingParams) -> TeacherInfo:
        host = urlparse(self.base_url).hostname or ""
        if host.endswith("api.openai.com") and top_k > OPENAI_MAX_TOP_LOGPROBS:
            raise ValueError(
                f"--top-k {top_k}: api.openai.com returns at most "
                f"{OPENAI_MAX_TOP_LOGPROBS} log-probs per token"
            )
        tok = self.tokenizer
        return TeacherInfo(
            model_id=self.model,
            revision=self.config.revision,
            backend="openai",
            tokenizer_hash=tokenizer_hash(tok) if tok is not None else "",
            vocab_size=len(tok) if tok is not None else 0,
            chat_template_hash=chat_template_hash(tok) if tok is not None else "",
            # What an API reports is its own choice; vLLM servers default to raw log-probs.
            logprobs_mode=LogprobsMode.RAW,
            top_k=top_k,
            sampling=sampling,
        )

    def encode_chat(self, messages: list[dict[str, str]]) -> list[int]:
        # The server applies its own chat template; with a local tokenizer we record the
        # ids that template gives (the same, when the tokenizer is the served model's).
        return encode_chat_ids(self.tokenizer, messages) if self.tokenizer is not None else []

    def decode(self, token_ids: list[int]) -> str:
        if self.tokenizer is None:
            return ""
        return self.tokenizer.decode(token_ids, skip_special_tokens=True)

    def tokenizer_info(self) -> TokenizerInfo | None:
        return describe_tokenizer(self.tokenizer) if self.tokenizer is not None else None

    def generate(
        self,
        prompts: list[list[int]],
        sampling: SamplingParams,
        top_k: int,
        seeds: list[int],
        messages: list[list[dict[str, str]]] | None = None,
    ) -> list[Generation]:
        if messages is None:
            raise ValueError("the openai backend needs the chat messages of each prompt")
        return asyncio.run(self._generate_all(messages, sampling, top_k, seeds))

    def score(self, pairs: list[tuple[list[int], list[int]]], top_k: int) -> list[Generation]:
        """Teacher forcing is not something an API offers: see `CannotScoreError`."""
        raise CannotScoreError(
            "scoring needs an hf: or vllm: teacher (an API returns log-probs of the tokens "
            "it generates, not of tokens it is given)"
        )

    def generate_stream(
        self, requests: Iterable[tuple[Tag, GenRequest]], sampling: SamplingParams, top_k: int
    ) -> Iterator[tuple[Tag, Generation]]:
        """Each request's `Generation` as it completes (any order), `concurrency` in flight
        throughout: one client and one event loop for all of them. Closing the iterator
        cancels the requests still in flight."""
        with BackgroundLoop() as loop:
            client = loop.run(self._open_client())
            gate, halted = asyncio.Semaphore(self.config.concurrency), [False]

            def ask(request: GenRequest) -> Any:
                if request.messages is None:
                    raise ValueError("the openai backend needs the chat messages of each prompt")
                return self._one(
                    client, gate, halted, request.messages, request.seed, sampling, top_k
                )

            try:
                # Twice the window submitted: the loop starts the next request the moment
                # one ends, even while the caller is busy writing a shard.
                yield from stream_window(requests, ask, 2 * self.config.concurrency, loop)
            finally:
                loop.run(cancel_others())  # the requests still in flight, then their client
                loop.run(client.close())

    async def _open_client(self) -> Any:
        import openai

        http = openai.DefaultAsyncHttpxClient(event_hooks={"request": [_count_attempt]})
        return openai.AsyncOpenAI(
            api_key=self.api_key,
            base_url=self.base_url,
            max_retries=self.config.max_retries,
            timeout=self.config.timeout_s,
            http_client=http,
        )

    async def _one(
        self,
        client: Any,
        gate: asyncio.Semaphore,
        halted: list[bool],
        chat: list[dict[str, str]],
        seed: int,
        sampling: SamplingParams,
        top_k: int,
    ) -> Generation:
        """One row, once the gate admits it; its attempts counted in its own task context.
        An error that stops the run halts the rows still waiting at the gate (they are
        cancelled there, never sent)."""
        attempts = [0]
        _ATTEMPTS.set(attempts)
        async with gate:
            if halted[0]:
                raise asyncio.CancelledError
            try:
                gen = await self._ask(client, chat, seed, sampling, top_k)
            except BaseException:
                halted[0] = True
                raise
        gen.attempts = attempts[0]
        return gen

    async def _generate_all(
        self,
        messages: list[list[dict[str, str]]],
        sampling: SamplingParams,
        top_k: int,
        seeds: list[int],
    ) -> list[Generation]:
        gate, halted = asyncio.Semaphore(self.config.concurrency), [False]
        async with await self._open_client() as client:
            tasks = [
                asyncio.create_task(self._one(client, gate, halted, m, s, sampling, top_k))
                for m, s in zip(messages, seeds, strict=True)
            ]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                # A fatal error (or Ctrl-C): stop the requests still in flight before closing.
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def _ask(
        self, client: Any, chat: list[dict[str, str]], seed: int, sampling: SamplingParams, k: int
    ) -> Generation:
        """One row's request: the client retries what fails in transit; a reply that came
        back but cannot be a record is asked again here, up to the same `max_retries`.
        Whatever still fails is returned as a failed `Generation`, never raised, so one
        bad reply costs its row alone and not the rest of the batch."""
        import openai
        from openai.types.chat import ChatCompletion

        body = {
            "model": self.model,
            "messages": chat,
            "max_completion_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed % (1 << 31),
            "n": 1,
            "logprobs": True,
            "top_logprobs": k,
            **({"return_tokens_as_token_ids": True} if self.mode == "vllm" else {}),
        }
        billed: dict[str, int] = {}  # a bad reply's tokens are paid for all the same
        retry = 0
        while True:
            try:
                try:
                    # The client's own `post` (its retries, Retry-After and errors), not
                    # `chat.completions.create`: the body is plain JSON already, and
                    # create's parameter transform costs ~0.6 ms of CPU a request, a
                    # fifth of the client's work at 64 in flight.
                    response = await client.post(
                        "/chat/completions", body=body, cast_to=ChatCompletion
                    )
                except (json.JSONDecodeError, UnicodeDecodeError) as err:
                    raise not_json(err) from None  # the client decodes a 200's body bare
                gen = parse_reply(response, k, self.mode, self._token_id)
            except openai.APIError as err:
                return self._failed(err, billed)
            except BadResponse as err:
                billed = _add_usage(billed, err.usage)
                if not err.retry or retry >= self.config.max_retries:
                    return self._failed(err, billed)
                await asyncio.sleep(min(BAD_REPLY_BACKOFF_S * 2**retry, 8.0))
                retry += 1
                continue
            gen.usage = _add_usage(billed, gen.usage)
            return gen

    def _failed(self, err: Exception, usage: dict[str, int]) -> Generation:
        failed = Generation.failed(self.classify(err), attempts=0)
        failed.usage = usage
        return failed

    def classify(self, err: Exception) -> RequestFailure:
        """What went wrong with one row, or `TeacherUnavailableError` if every row would fail."""
        return classify_failure(err, self.base_url, self.model, self.api_key)

    def _token_id(self, token: str, raw: list[int] | None = None) -> int | None:
        if self.mode == "vllm":
            return vllm_token_id(token)
        if self._token_map is None:
            self._token_map = build_token_map(self.tokenizer)
        return self._token_map.lookup(token, raw)


def _add_usage(a: dict[str, int], b: dict[str, int]) -> dict[str, int]:
    return {key: a.get(key, 0) + b.get(key, 0) for key in a.keys() | b.keys()}


async def _count_attempt(request: Any) -> None:
    counter = _ATTEMPTS.get()
    if counter is not None:
        counter[0] += 1


def load_openai_teacher(
    target: str, config: OpenAIConfig | None = None, api_key_env: str | None = None
) -> OpenAITeacher:
    config = config or OpenAIConfig()
    model, base_url = parse_openai_target(target)
    if api_key_env:
        api_key = os.environ.get(api_key_env)
        if not api_key:
            raise ValueError(f"--api-key-env {api_key_env}: that environment variable is not set")
    elif (urlparse(base_url).hostname or "") in ("127.0.0.1", "localhost", "::1"):
        api_key = "EMPTY"  # local servers (vllm serve) need no key
    else:
        raise ValueError(
            f"{base_url}: name the environment variable holding the API key with --api-key-env"
        )
    tokenizer = None
    if config.tokenizer is not None:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(Path(config.tokenizer).expanduser())
    return OpenAITeacher(
        model=model,
        base_url=base_url,
        api_key=api_key,
        config=config,
        mode=resolve_mode(config, base_url),
        tokenizer=tokenizer,
    )
