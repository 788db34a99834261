"""Generated API replies, good and hostile, through the real `openai` client; no server.

The client's HTTP transport is swapped for an in-process one (`MockTransport`) that answers
each prompt with a given body, so a reply takes the path of a real one: the client decodes
the JSON and builds its objects, `parse_reply` checks them. Each example sends three rows:
a good reply, the reply under test, another good reply. A hostile reply must fail its own
row only, with kind `bad_response` and a reason naming what is wrong, after a retry; the two
good rows must come back exactly as an independent reading of their bodies says.
"""

from __future__ import annotations

import importlib
import json
import math
from contextlib import contextmanager
from unittest import mock

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import distill.teachers.openai_teacher as openai_teacher
from distill.schemas import SamplingParams
from distill.teachers.backend import Generation
from distill.teachers.openai_teacher import OpenAIConfig, OpenAITeacher

http = importlib.import_module(openai.DefaultHttpxClient.__mro__[1].__module__.split(".")[0])
MAX_RETRIES = 1
USAGE = {"prompt_tokens": 11, "completion_tokens": 4, "total_tokens": 15}
FUZZ = settings(max_examples=60, deadline=None)

logprobs = st.floats(min_value=-30.0, max_value=0.0, allow_nan=False)


@st.composite
def good_body(draw: st.DrawFn, k: int) -> dict:
    """A completion in vLLM's token-id form: each step's top list holds k to k + 2 entries
    with distinct log-probs, in any order (nothing promises the server sorts them)."""
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        tops = draw(st.lists(logprobs, min_size=k, max_size=k + 2, unique=True))
        ids = draw(st.lists(st.integers(0, 50_000), min_size=len(tops), max_size=len(tops)))
        top = [
            {"token": f"token_id:{i}", "logprob": lp, "bytes": None}
            for i, lp in zip(ids, tops, strict=True)
        ]
        sampled = {"token": f"token_id:{draw(st.integers(0, 50_000))}", "logprob": draw(logprobs)}
        steps.append({**sampled, "bytes": None, "top_logprobs": top})
    choice = {
        "index": 0,
        "message": {"role": "assistant", "content": "text"},
        "finish_reason": draw(st.sampled_from(["stop", "length"])),
        "logprobs": {"content": steps},
    }
    return {
        "id": "c",
        "object": "chat.completion",
        "model": "m",
        "choices": [choice],
        "usage": USAGE,
    }


def expected(body: dict, k: int) -> tuple:
    """What the record must hold, read straight from the body: top-k best first, tail mass
    1 - sum(exp) clamped at 0."""
    steps = body["choices"][0]["logprobs"]["content"]
    ids = [int(s["token"].split(":")[1]) for s in steps]
    tops = [sorted(s["top_logprobs"], key=lambda t: t["logprob"], reverse=True)[:k] for s in steps]
    topk_ids = [[int(t["token"].split(":")[1]) for t in top] for top in tops]
    topk_lps = [[t["logprob"] for t in top] for top in tops]
    tails = [max(0.0, 1.0 - math.fsum(math.exp(lp) for lp in lps)) for lps in topk_lps]
    sampled = [s["logprob"] for s in steps]
    return ids, topk_ids, topk_lps, sampled, tails


def assert_matches(gen: Generation, body: dict, k: int) -> None:
    assert gen.failure is None, gen.failure
    ids, topk_ids, topk_lps, sampled, tails = expected(body, k)
    assert (gen.token_ids, gen.topk_ids, gen.topk_logprobs) == (ids, topk_ids, topk_lps)
    assert gen.sampled_logprob == sampled
    assert gen.tail_mass == pytest.approx(tails, abs=1e-12)
    assert gen.finish_reason == body["choices"][0]["finish_reason"]
    assert (gen.attempts, gen.usage) == (1, {"prompt_tokens": 11, "completion_tokens": 4})


@contextmanager
def served(bodies: dict[str, dict | bytes]):
    """The client's transport answers prompt P with bodies[P] (bytes are sent verbatim)."""

    def answer(request):
        prompt = json.loads(request.content)["messages"][-1]["content"]
        body = bodies[prompt]
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        return http.Response(200, headers={"content-type": "application/json"}, content=data)

    real = openai.DefaultAsyncHttpxClient

    def client(**kwargs):
        return real(transport=http.MockTransport(answer), **kwargs)

    with (
        mock.patch.object(openai, "DefaultAsyncHttpxClient", client),
        mock.patch.object(openai_teacher, "BAD_REPLY_BACKOFF_S", 0.0),
    ):
        yield


def ask(bodies: dict[str, dict | bytes], k: int) -> list[Generation]:
    teacher = OpenAITeacher(
        "m", "http://127.0.0.1:9/v1", "EMPTY", OpenAIConfig(max_retries=MAX_RETRIES), "vllm"
    )
    chats = [[{"role": "user", "content": prompt}] for prompt in bodies]
    with served(bodies):
        return teacher.generate([[]] * len(chats), SamplingParams(), k, [0] * len(chats), chats)


@given(data=st.data(), k=st.integers(1, 5))
@FUZZ
def test_good_replies_in_any_order_are_read_exactly(data: st.DataObject, k: int) -> None:
    bodies = {f"p{i}": data.draw(good_body(k)) for i in range(3)}
    for gen, body in zip(ask(bodies, k), bodies.values(), strict=True):
        assert_matches(gen, body, k)


def at_logprob(data: st.DataObject, body: dict) -> tuple[dict, str]:
    """A random log-prob field of the body (a sampled token's or a top entry's), and the
    path the reason must name."""
    steps = body["choices"][0]["logprobs"]["content"]
    i = data.draw(st.integers(0, len(steps) - 1))
    j = data.draw(st.integers(-1, len(steps[i]["top_logprobs"]) - 1))
    if j < 0:
        return steps[i], f"logprobs.content[{i}]"
    return steps[i]["top_logprobs"][j], f"logprobs.content[{i}].top_logprobs[{j}]"


def spoil(data: st.DataObject, body: dict, k: int, how: str) -> tuple[dict | bytes, str, bool]:
    """The body spoiled one way: (payload, the reason it must fail with, billed usage kept)."""
    steps = body["choices"][0]["logprobs"]["content"]
    i = data.draw(st.integers(0, len(steps) - 1))
    if how == "bad_value":
        value = data.draw(st.sampled_from([math.nan, math.inf, -math.inf, 0.5, 7.0, -1e39]))
        entry, where = at_logprob(data, body)
        entry["logprob"] = value
        return body, f"{where}.logprob is {float(value)}, not a log-prob", True
    if how == "not_a_number":  # (the client itself turns "-1" into -1.0 and true into 1.0)
        value, shape = data.draw(
            st.sampled_from(
                [("abc", "a str"), (None, "missing"), ([], "an empty list"), ({"v": 1}, "a dict")]
            )
        )
        entry, where = at_logprob(data, body)
        entry["logprob"] = value
        return body, f"{where}.logprob is {shape}, not a number", True
    if how == "no_top_logprobs":
        del steps[i]["top_logprobs"]
        return body, f"logprobs.content[{i}].top_logprobs is missing", True
    if how == "fewer_than_k":
        m = data.draw(st.integers(0, k - 1))
        steps[i]["top_logprobs"] = steps[i]["top_logprobs"][:m]
        return body, f"logprobs.content[{i}].top_logprobs has {m} entries, asked for {k}", True
    if how == "bad_token":
        token = data.draw(st.sampled_from(["hello", "token_id:", "token_id:-3", "token_id:1e3"]))
        steps[i]["token"] = token
        return body, f"token {token!r} is not 'token_id:N'", True
    if how == "empty_content":
        body["choices"][0]["logprobs"]["content"] = []
        return body, "logprobs.content is an empty list, not tokens", True
    if how == "no_choices":
        body["choices"] = data.draw(st.sampled_from([[], None]))
        shape = "missing" if body["choices"] is None else "an empty list"
        return body, f"choices is {shape}, not a list of one", True
    if how == "error_body":
        message = data.draw(
            st.text(st.characters(codec="ascii", categories=["L", "N"]), max_size=40)
        )
        return (
            {"error": {"message": message, "code": 500}},
            f"a 200 reply carrying an error: {message}",
            False,
        )
    text = json.dumps(body).encode()  # "truncated": cut anywhere, the object never closes
    return text[: data.draw(st.integers(0, len(text) - 1))], "reply body is not valid JSON (", False


SPOILS = [
    "bad_value",
    "not_a_number",
    "no_top_logprobs",
    "fewer_than_k",
    "bad_token",
    "empty_content",
    "no_choices",
    "error_body",
    "truncated",
]


@given(data=st.data(), k=st.integers(1, 5), how=st.sampled_from(SPOILS))
@FUZZ
def test_a_hostile_reply_fails_its_row_alone_after_a_retry(
    data: st.DataObject, k: int, how: str
) -> None:
    bodies = {f"p{i}": data.draw(good_body(k)) for i in range(3)}
    good = {key: json.loads(json.dumps(body)) for key, body in bodies.items()}
    bodies["p1"], reason, billed = spoil(data, bodies["p1"], k, how)
    first, bad, last = ask(bodies, k)
    assert_matches(first, good["p0"], k)
    assert_matches(last, good["p2"], k)
    assert bad.failure is not None and bad.failure.kind == "bad_response"
    assert bad.failure.reason.startswith(f"BadResponse: {reason}"), (bad.failure.reason, reason)
    assert bad.attempts == MAX_RETRIES + 1 and bad.token_ids == []
    per_try = {"prompt_tokens": 11, "completion_tokens": 4} if billed else {}
    assert bad.usage == {key: v * bad.attempts for key, v in per_try.items()}


def test_a_server_without_log_probs_is_not_asked_twice() -> None:
    """Asking again cannot help (the server lacks the feature) and every try is billed."""
    choice = {"message": {"content": "x"}, "finish_reason": "stop", "logprobs": None}
    (gen,) = ask({"p": {"choices": [choice], "usage": USAGE}}, 2)
    assert gen.failure is not None and gen.attempts == 1
    assert gen.failure.reason.startswith("BadResponse: no log-probs (does it support")


class StopsInSecondBatch(OpenAITeacher):
    """A teacher with a bug that raises in its second batch."""

    def generate(self, *args, **kwargs) -> list[Generation]:
        self.calls = getattr(self, "calls", 0) + 1
        if self.calls == 2:
            raise RuntimeError("a bug in batch 2")
        return super().generate(*args, **kwargs)


def test_rows_answered_before_an_unexpected_error_are_written(tmp_path) -> None:
    from distill.gen.runner import generate_dataset
    from distill.store import read_table

    top = [{"token": f"token_id:{j}", "logprob": -1.0 - j, "bytes": None} for j in range(2)]
    step = {"token": "token_id:1", "logprob": -1.0, "bytes": None, "top_logprobs": top}
    choice = {"message": {"content": "x"}, "finish_reason": "stop", "logprobs": {"content": [step]}}
    prompts = [f"q{i}" for i in range(4)]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in prompts))
    teacher = StopsInSecondBatch("m", "http://127.0.0.1:9/v1", "EMPTY", OpenAIConfig(), "vllm")
    bodies = {p: {"choices": [choice], "usage": USAGE} for p in prompts}
    with served(bodies), pytest.raises(RuntimeError, match="a bug in batch 2"):
        generate_dataset(
            path, tmp_path / "out", teacher=teacher, top_k=2, batch_size=2, progress=False
        )
    rows = read_table(tmp_path / "out").to_pylist()
    assert len(rows) == 2 and all(row["token_ids"] == [1] for row in rows)
