"""One API reply -> Generation, one failed request -> its kind; no server needed."""

from __future__ import annotations

import importlib
import math
from types import SimpleNamespace

import openai
import pytest

from distill.teachers.backend import TeacherUnavailableError
from distill.teachers.openai_replies import (
    BadResponse,
    classify_failure,
    parse_reply,
    redact,
    vllm_token_id,
)

KEY = "sk-secret-0123456789"
# openai 1.x/2.x build on httpx, 3.x on its fork httpx2: make requests with whichever it uses.
http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])


def entry(token: str, logprob: float, top: list[tuple[str, float]]) -> SimpleNamespace:
    tops = [SimpleNamespace(token=t, logprob=lp, bytes=None) for t, lp in top]
    return SimpleNamespace(token=token, logprob=logprob, bytes=None, top_logprobs=tops)


def reply(content: list[SimpleNamespace] | None, finish: str = "stop") -> SimpleNamespace:
    return SimpleNamespace(
        choices=[
            SimpleNamespace(
                finish_reason=finish,
                message=SimpleNamespace(content="hi"),
                logprobs=None if content is None else SimpleNamespace(content=content),
            )
        ],
        usage=SimpleNamespace(prompt_tokens=7, completion_tokens=2),
    )


VOCAB = {"a": 1, "b": 2, "c": 3}


def test_reply_is_read_in_log_prob_order_and_unmapped_entries_go_to_the_tail() -> None:
    content = [
        entry("a", -0.2, [("b", -2.0), ("a", -0.2), ("zz", -1.0)]),
        entry("c", -0.1, [("c", -0.1), ("a", -3.0), ("b", -4.0)]),
    ]
    gen = parse_reply(reply(content, "length"), 3, "tokenizer", lambda t, raw: VOCAB.get(t))
    assert gen.token_ids == [1, 3] and gen.finish_reason == "length"
    assert gen.topk_ids == [[1, 2], [3, 1, 2]]  # "zz" has no id: dropped, counted
    assert gen.unmapped == 1
    assert gen.sampled_logprob == [-0.2, -0.1]
    assert gen.tail_mass[0] == pytest.approx(1 - math.exp(-0.2) - math.exp(-2.0))
    assert gen.usage == {"prompt_tokens": 7, "completion_tokens": 2}


def test_a_reply_that_cannot_be_a_record_raises_with_its_usage() -> None:
    with pytest.raises(BadResponse, match="no log-probs") as err:
        parse_reply(reply(None), 2, "tokenizer", lambda t, raw: VOCAB.get(t))
    assert err.value.kind == "bad_response" and err.value.usage["prompt_tokens"] == 7
    with pytest.raises(BadResponse) as err:
        parse_reply(reply([entry("zz", -0.1, [])]), 2, "tokenizer", lambda t, raw: None)
    assert err.value.kind == "unmapped_token"
    hard = parse_reply(reply(None), 2, "none", lambda t, raw: None)
    assert hard.text == "hi" and hard.token_ids == []


def test_vllm_token_ids_and_redaction() -> None:
    assert vllm_token_id("token_id:123") == 123
    with pytest.raises(BadResponse, match="not 'token_id:N'"):
        vllm_token_id("hello")
    assert redact(KEY, f"bad key {KEY}!") == "bad key ***!"
    assert redact("EMPTY", "EMPTY body") == "EMPTY body"  # too short to be a secret


def status_error(cls: type, status: int) -> openai.APIStatusError:
    request = http.Request("POST", "http://127.0.0.1:1/v1/chat/completions")
    response = http.Response(status, request=request)
    return cls(f"echo {KEY}", response=response, body=None)


@pytest.mark.parametrize(
    ("cls", "status", "kind"),
    [
        (openai.RateLimitError, 429, "rate_limited"),
        (openai.InternalServerError, 503, "server_error"),
        (openai.BadRequestError, 400, "bad_request"),
        (openai.UnprocessableEntityError, 422, "http_error"),
    ],
)
def test_failures_are_classified_and_never_carry_the_key(cls, status, kind) -> None:
    failure = classify_failure(status_error(cls, status), "http://h/v1", "m", KEY)
    assert (failure.kind, failure.status) == (kind, status)
    assert KEY not in failure.reason and "***" in failure.reason


def test_key_and_model_errors_stop_the_run() -> None:
    with pytest.raises(TeacherUnavailableError, match="refused the API key") as err:
        classify_failure(status_error(openai.AuthenticationError, 401), "http://h/v1", "m", KEY)
    assert KEY not in str(err.value)
    with pytest.raises(TeacherUnavailableError, match="model 'm' or the endpoint"):
        classify_failure(status_error(openai.NotFoundError, 404), "http://h/v1", "m", KEY)
    request = http.Request("POST", "http://h/v1")
    assert classify_failure(openai.APITimeoutError(request), "u", "m", KEY).kind == "timeout"
