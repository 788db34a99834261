"""Turning one API reply into a `Generation`, and one failed request into its reason.

Pure functions of the reply (or the exception), split from `openai_teacher` which owns the
client, the concurrency and the token map. `redact` keeps the API key out of every reason
string: a server may echo the request (and so the key) back in an error body.

A reply is hostile until checked: the client builds it from the JSON without validation,
so any field may be missing, null or of another type. `parse_reply` checks each field it
reads and turns every defect (a body that is not JSON, a 200 carrying an error, no
choices, a NaN or positive log-prob, a step without `top_logprobs` or with fewer than k)
into `BadResponse`, whose reason names the token position and the field; no such reply
ever becomes a record.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from distill.teachers.backend import (
    Generation,
    RequestFailure,
    TeacherUnavailableError,
    tail_from_topk,
)

TOKEN_ID_PREFIX = "token_id:"
REASON_CHARS = 300
# log_softmax in float32 can round a near-certain token's log-prob a hair above 0.
LOGPROB_SLACK = 1e-4
FLOAT32_LOWEST = -3.4e38
INT32_END = 1 << 31  # token ids are stored as int32
# What a malformed reply raises inside the parser before a check names it.
MALFORMED = (AttributeError, TypeError, KeyError, IndexError, ValueError, OverflowError)


class BadResponse(ValueError):
    """A 200 reply we cannot turn into a record (malformed, no log-probs, an unmappable token).

    `retry`: whether asking again may help. A garbled or truncated body may come out whole
    next time; a server without log-probs, or a token our tokenizer lacks, will not.
    """

    def __init__(self, kind: str, message: str, retry: bool = True) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry = retry
        self.usage: dict[str, int] = {}  # the reply's tokens are billed all the same


def not_json(err: Exception) -> BadResponse:
    """The client could not decode the body (truncated, garbled, not UTF-8)."""
    return BadResponse("bad_response", f"reply body is not valid JSON ({err})")


def redact(api_key: str, text: str) -> str:
    # A short key ("EMPTY" for local servers) is no secret, and replacing it would mangle text.
    return text.replace(api_key, "***") if len(api_key) >= 8 else text


def vllm_token_id(token: str) -> int:
    """A vLLM server's token under `return_tokens_as_token_ids`: "token_id:123" -> 123."""
    digits = token.removeprefix(TOKEN_ID_PREFIX)
    if digits == token or not (digits.isascii() and digits.isdigit()) or len(digits) > 10:
        raise BadResponse("bad_response", f"token {token[:40]!r} is not 'token_id:N'")
    if int(digits) >= INT32_END:
        raise BadResponse("bad_response", f"token {token!r}: id out of range")
    return int(digits)


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
    except MALFORMED as err:  # a shape no check below foresaw: still this reply's fault
        bad = BadResponse("bad_response", f"malformed reply ({type(err).__name__}: {err})")
        bad.usage = usage_of(response)
        raise bad from None  # the reason names the error already


def _parse(
    response: Any, top_k: int, mode: str, token_id: Callable[[str, list[int] | None], int | None]
) -> Generation:
    choice = _first_choice(response)
    finish = "length" if _field(choice, "finish_reason") == "length" else "stop"
    usage = usage_of(response)
    if mode == "none":
        return Generation([], [], [], [], [], finish, text=_message_text(choice), usage=usage)
    logprobs = _field(choice, "logprobs")
    if logprobs is None:
        raise BadResponse(
            "bad_response", "no log-probs (does it support logprobs=True?)", retry=False
        )
    content = _field(logprobs, "content")
    if not isinstance(content, list) or not content:
        raise BadResponse("bad_response", f"logprobs.content is {_shape(content)}, not tokens")
    gen = Generation([], [], [], [], [], finish, usage=usage)
    for pos, step in enumerate(content):
        where = f"logprobs.content[{pos}]"
        token, logprob = _entry(step, where)
        sampled = token_id(token, _field(step, "bytes"))
        if sampled is None:
            raise BadResponse("unmapped_token", f"sampled token {token!r} has no id", retry=False)
        tops = _field(step, "top_logprobs")
        if not isinstance(tops, list):
            raise BadResponse("bad_response", f"{where}.top_logprobs is {_shape(tops)}")
        if len(tops) < top_k:
            raise BadResponse(
                "bad_response", f"{where}.top_logprobs has {len(tops)} entries, asked for {top_k}"
            )
        entries = [_entry(t, f"{where}.top_logprobs[{j}]") for j, t in enumerate(tops)]
        # Servers list them best first, but nothing promises it: rank them ourselves.
        ranked = sorted(zip(entries, tops, strict=True), key=lambda pair: -pair[0][1])[:top_k]
        mapped = [(token_id(tok, _field(raw, "bytes")), lp) for (tok, lp), raw in ranked]
        kept = [(i, lp) for i, lp in mapped if i is not None]
        gen.unmapped += len(mapped) - len(kept)
        gen.token_ids.append(sampled)
        gen.topk_ids.append([i for i, _ in kept])
        gen.topk_logprobs.append([lp for _, lp in kept])
        gen.sampled_logprob.append(logprob)
        # An unmapped entry's mass is counted in the tail, where it belongs.
        gen.tail_mass.append(tail_from_topk(gen.topk_logprobs[-1]))
    return gen


def _field(obj: Any, name: str) -> Any:
    """`obj.name` for the client's objects, `obj[name]` for a dict it left raw; else None."""
    if isinstance(obj, dict):
        return obj.get(name)
    return getattr(obj, name, None)


def _shape(value: Any) -> str:
    if value is None:
        return "missing"
    if isinstance(value, list | str | dict) and not value:
        return f"an empty {type(value).__name__}"
    name = type(value).__name__
    return f"{'an' if name[0] in 'aeiou' else 'a'} {name}"


def _first_choice(response: Any) -> Any:
    if isinstance(response, str):  # the client hands back the text of a non-JSON reply
        raise BadResponse("bad_response", f"reply is not JSON: {response[:80]!r}")
    if response is None or isinstance(response, list | int | float | bool):
        raise BadResponse("bad_response", f"reply is {_shape(response)}, not a JSON object")
    error = _field(response, "error")
    if error is not None:
        message = _field(error, "message") if isinstance(error, dict) else error
        raise BadResponse("bad_response", f"a 200 reply carrying an error: {message}")
    choices = _field(response, "choices")
    if not isinstance(choices, list) or not choices:
        raise BadResponse("bad_response", f"choices is {_shape(choices)}, not a list of one")
    return choices[0]


def _message_text(choice: Any) -> str:
    text = _field(_field(choice, "message"), "content")
    if not isinstance(text, str) or not text:
        raise BadResponse("bad_response", f"message.content is {_shape(text)}, not text")
    return text


def _entry(step: Any, where: str) -> tuple[str, float]:
    """(token, log-prob) of one log-prob entry, checked: a string, and a finite value <= 0."""
    token, logprob = _field(step, "token"), _field(step, "logprob")
    if not isinstance(token, str):
        raise BadResponse("bad_response", f"{where}.token is {_shape(token)}, not a string")
    if isinstance(logprob, bool) or not isinstance(logprob, int | float):
        raise BadResponse("bad_response", f"{where}.logprob is {_shape(logprob)}, not a number")
    try:
        value = float(logprob)
    except OverflowError:  # an integer with hundreds of digits
        value = -math.inf if logprob < 0 else math.inf
    # Records hold float32: a value past its range would be written as -inf.
    if not math.isfinite(value) or not FLOAT32_LOWEST <= value <= LOGPROB_SLACK:
        raise BadResponse("bad_response", f"{where}.logprob is {value}, not a log-prob")
    return token, value


def usage_of(response: Any) -> dict[str, int]:
    """The billed tokens; a field that is not a count is left out, not guessed."""
    usage = _field(response, "usage") if not isinstance(response, str) else None
    out = {}
    for key in ("prompt_tokens", "completion_tokens"):
        value = _field(usage, key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            out[key] = value
    return out
