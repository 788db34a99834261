"""Turning one API reply into a `Generation`, and one failed request into its reason.

Pure functions of the reply (or the exception), split from `openai_teacher` which owns the
client, the concurrency and the token map. `redact` keeps the API key out of every reason
string: a server may echo the request (and so the key) back in an error body.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from distill.gen.backend import (
    Generation,
    RequestFailure,
    TeacherUnavailableError,
    tail_from_topk,
)

TOKEN_ID_PREFIX = "token_id:"
REASON_CHARS = 300


class BadResponse(ValueError):
    """A 200 reply we cannot turn into a record (no log-probs, an unmappable token)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.usage: dict[str, int] = {}  # the reply's tokens are billed all the same


def redact(api_key: str, text: str) -> str:
    # A short key ("EMPTY" for local servers) is no secret, and replacing it would mangle text.
    return text.replace(api_key, "***") if len(api_key) >= 8 else text


def vllm_token_id(token: str) -> int:
    """A vLLM server's token under `return_tokens_as_token_ids`: "token_id:123" -> 123."""
    if not token.startswith(TOKEN_ID_PREFIX):
        raise BadResponse("bad_response", f"token {token!r} is not 'token_id:N'")
    return int(token[len(TOKEN_ID_PREFIX) :])


def classify_failure(err: Exception, base_url: str, model: str, api_key: str) -> RequestFailure:
    """What went wrong with one row, or `TeacherUnavailableError` if every row would fail."""
    import openai

    status = getattr(err, "status_code", None)
    message = redact(api_key, str(getattr(err, "message", err)))
    cause = err.__cause__
    if cause is not None:  # e.g. the httpx error under "Connection error."
        message += f" ({type(cause).__name__}: {redact(api_key, str(cause))})"
    reason = f"{type(err).__name__}" + (f" {status}" if status else "") + f": {message}"
    reason = reason[:REASON_CHARS]
    if isinstance(err, openai.AuthenticationError | openai.PermissionDeniedError):
        raise TeacherUnavailableError(
            f"{base_url} refused the API key ({reason}); check --api-key-env"
        ) from None
    if isinstance(err, openai.NotFoundError):
        raise TeacherUnavailableError(
            f"{base_url}: model {model!r} or the endpoint was not found "
            f"({reason}); check openai:MODEL@BASE_URL (the URL usually ends in /v1)"
        ) from None
    if isinstance(err, BadResponse):
        kind = err.kind
    elif isinstance(err, openai.APIResponseValidationError):
        kind = "bad_response"
    elif isinstance(err, openai.APITimeoutError):
        kind = "timeout"
    elif isinstance(err, openai.APIConnectionError):
        kind = "connection"
    elif isinstance(err, openai.RateLimitError):
        kind = "rate_limited"
    elif isinstance(err, openai.InternalServerError):
        kind = "server_error"
    elif status == 400:
        kind = "bad_request"
    else:
        kind = "http_error"
    return RequestFailure(kind=kind, reason=reason, status=status)


def parse_reply(
    response: Any, top_k: int, mode: str, token_id: Callable[[str, list[int] | None], int | None]
) -> Generation:
    """The reply as a `Generation`: token ids through `token_id` (None: unmappable), the
    top-k by log-prob; a reply that cannot be one raises `BadResponse` carrying its usage."""
    try:
        return _parse(response, top_k, mode, token_id)
    except BadResponse as err:
        err.usage = usage_of(response)
        raise


def _parse(
    response: Any, top_k: int, mode: str, token_id: Callable[[str, list[int] | None], int | None]
) -> Generation:
    choice = response.choices[0]
    finish = "length" if choice.finish_reason == "length" else "stop"
    usage = usage_of(response)
    text = choice.message.content or ""
    if mode == "none":
        return Generation([], [], [], [], [], finish, text=text, usage=usage)
    content = choice.logprobs.content if choice.logprobs is not None else None
    if not content:
        raise BadResponse("bad_response", "no log-probs (does it support logprobs=True?)")
    gen = Generation([], [], [], [], [], finish, usage=usage)
    for step in content:
        sampled = token_id(step.token, step.bytes)
        if sampled is None:
            raise BadResponse("unmapped_token", f"sampled token {step.token!r} has no id")
        gen.token_ids.append(sampled)
        top = sorted(step.top_logprobs, key=lambda t: -t.logprob)[:top_k]
        mapped = [(token_id(t.token, t.bytes), float(t.logprob)) for t in top]
        kept = [(i, lp) for i, lp in mapped if i is not None]
        gen.unmapped += len(mapped) - len(kept)
        gen.topk_ids.append([i for i, _ in kept])
        gen.topk_logprobs.append([lp for _, lp in kept])
        gen.sampled_logprob.append(float(step.logprob))
        # An unmapped entry's mass is counted in the tail, where it belongs.
        gen.tail_mass.append(tail_from_topk(gen.topk_logprobs[-1]))
    return gen


def usage_of(response: Any) -> dict[str, int]:
    if getattr(response, "usage", None) is None:
        return {}
    return {
        "prompt_tokens": int(response.usage.prompt_tokens or 0),
        "completion_tokens": int(response.usage.completion_tokens or 0),
    }
