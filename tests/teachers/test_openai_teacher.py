"""The OpenAI-compatible teacher against a fake server on 127.0.0.1 that injects faults.

The fake speaks just enough of the chat-completions API (with vLLM's `token_id:N` tokens
and GET /version), answers a chosen prompt's first request with 429 + Retry-After and
another's with 500, and records timings and how many requests were in flight at once.
It can also answer every request with one status (401, 404), or return given token
strings (`FakeState.steps`) as a server that is not vLLM does. The faults of a real server
are in test_fault_proxy.py.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.gen.failures import FAILED_FILE
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table
from distill.teachers.backend import TeacherUnavailableError
from distill.teachers.openai_teacher import OpenAIConfig, load_openai_teacher, parse_openai_target

pytest.importorskip("openai")

SECRET = "sk-test-DO-NOT-LEAK-4242"
KEY_ENV = "DISTILL_TEST_API_KEY"
PROMPTS = [f"Question {i}: name a colour." for i in range(5)] + ["RATE-LIMIT me", "FAIL me"]
RETRY_AFTER_S = 1.5
RESPONSE_IDS = [28, 29, 2]


class FakeState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.in_flight = 0
        self.max_in_flight = 0
        self.times: dict[str, list[float]] = defaultdict(list)
        self.bodies: list[dict] = []
        self.auth: set[str] = set()
        self.status: int | None = None  # answer every chat request with this status
        self.steps: list[dict] | None = None  # logprobs.content to return, verbatim


def make_handler(state: FakeState):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, code: int, body: dict, headers: dict[str, str] | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            if self.path == "/version":
                self._send(200, {"version": "fake"})
            else:
                self._send(404, {"error": "no"})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            with state.lock:
                state.bodies.append(body)
                state.auth.add(self.headers.get("Authorization", ""))
                state.times[prompt].append(time.monotonic())
                attempt = len(state.times[prompt])
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
            try:
                time.sleep(0.05)
                if state.status is not None:
                    return self._send(state.status, {"error": {"message": "no"}})
                if state.steps is not None:
                    return self._send(200, completion(body, state.steps))
                if "RATE-LIMIT" in prompt and attempt == 1:
                    headers = {"Retry-After": str(RETRY_AFTER_S)}
                    return self._send(429, {"error": {"message": "slow down"}}, headers)
                if "FAIL" in prompt and attempt == 1:
                    return self._send(500, {"error": {"message": "boom"}})
                self._send(200, completion(body))
            finally:
                with state.lock:
                    state.in_flight -= 1

    return Handler


def completion(body: dict, steps: list[dict] | None = None) -> dict:
    k = body["top_logprobs"]
    as_ids = body.get("return_tokens_as_token_ids")
    if steps is not None:
        return completion_with(body, steps)
    steps = []
    for tid in RESPONSE_IDS:
        name = f"token_id:{tid}" if as_ids else "x"
        top = [
            {"token": f"token_id:{tid + j}" if as_ids else "x", "logprob": -0.1 - j, "bytes": None}
            for j in range(k)
        ]
        steps.append({"token": name, "logprob": -0.1, "bytes": None, "top_logprobs": top})
    return completion_with(body, steps)


def completion_with(body: dict, steps: list[dict]) -> dict:
    return {
        "id": "cmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "blue"},
                "finish_reason": "stop",
                "logprobs": {"content": steps},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


@pytest.fixture
def fake_server():
    state = FakeState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def prompts_file(tmp_path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    return path


def test_retries_concurrency_usage_and_key_secrecy(
    fake_server, prompts_file, tmp_path, monkeypatch, capsys, embedded_teacher
):
    from distill.teachers.embedded import embedded_teacher_dir

    base_url, state = fake_server
    monkeypatch.setenv(KEY_ENV, SECRET)
    out = tmp_path / "out"
    generate_dataset(
        prompts_file,
        out,
        teacher=f"openai:fake-model@{base_url}",
        teacher_options={
            "concurrency": 2,
            "max_retries": 3,
            "timeout_s": 10,
            "tokenizer": str(embedded_teacher_dir()),
        },
        api_key_env=KEY_ENV,
        top_k=4,
        sampling=SamplingParams(max_new_tokens=8),
        batch_size=len(PROMPTS),
        progress=False,
    )
    rows = read_table(out).to_pylist()
    assert len(rows) == len(PROMPTS)
    for row in rows:
        assert row["token_ids"] == RESPONSE_IDS
        assert row["topk_ids"][0] == [28, 29, 30, 31]
        assert row["teacher"]["backend"] == "openai"
        assert len(row["prompt_token_ids"]) > 0  # from the named tokenizer's chat template
    # Every request asked for vLLM token ids and k log-probs.
    assert all(b["return_tokens_as_token_ids"] and b["top_logprobs"] == 4 for b in state.bodies)
    # The client retried the 429 and the 500, and waited Retry-After for the 429.
    rate_limited = state.times["RATE-LIMIT me"]
    assert len(rate_limited) == 2 and len(state.times["FAIL me"]) == 2
    assert rate_limited[1] - rate_limited[0] >= RETRY_AFTER_S - 0.1
    assert state.max_in_flight <= 2
    counts = load_manifest(out).counts
    assert counts["usage_prompt_tokens"] == 10 * len(PROMPTS)
    assert counts["usage_completion_tokens"] == 3 * len(PROMPTS)
    # The key reached the server and nowhere else: not in any output file, nor the output.
    assert state.auth == {f"Bearer {SECRET}"}
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err


def test_hard_labels_without_token_ids(fake_server, prompts_file, tmp_path):
    base_url, _ = fake_server
    out = tmp_path / "out"
    generate_dataset(
        prompts_file,
        out,
        teacher=f"openai:fake-model@{base_url}",
        teacher_options={"token_ids": "none"},
        top_k=3,
        sampling=SamplingParams(max_new_tokens=8),
        progress=False,
    )
    rows = read_table(out).to_pylist()
    assert [r["response_text"] for r in rows] == ["blue"] * len(PROMPTS)
    assert all(r["token_ids"] == [] and r["topk_ids"] == [] for r in rows)
    manifest = load_manifest(out)
    assert manifest.params["hard_labels"] is True
    assert manifest.tokenizer is None


def test_openai_refuses_k_over_20_and_missing_key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    teacher = load_openai_teacher("gpt-4o-mini", OpenAIConfig(), api_key_env=KEY_ENV)
    with pytest.raises(ValueError, match="at most 20"):
        teacher.info(21, SamplingParams())
    assert SECRET not in repr(teacher)
    monkeypatch.delenv(KEY_ENV)
    with pytest.raises(ValueError, match=KEY_ENV):
        load_openai_teacher("gpt-4o-mini", OpenAIConfig(), api_key_env=KEY_ENV)
    with pytest.raises(ValueError, match="--api-key-env"):
        load_openai_teacher("gpt-4o-mini", OpenAIConfig())


def test_parse_target():
    assert parse_openai_target("m@http://127.0.0.1:8000/v1/") == ("m", "http://127.0.0.1:8000/v1")
    assert parse_openai_target("gpt-4o")[1] == "https://api.openai.com/v1"


def test_token_strings_mapped_through_the_tokenizer(
    fake_server, prompts_file, tmp_path, embedded_teacher
):
    """A server that is not vLLM returns token text (+ bytes); the named tokenizer maps it.

    Each step's top-k holds the sampled token as text, another token in its byte-level
    vocabulary form ('Ġworld') and a string no token has. The response includes the two
    byte tokens of '☃' after 'Ġâ': their text is '\\ufffd', which many ids decode to, so
    only their bytes say which id they are (the old rule took the lowest such id).
    """
    from transformers import AutoTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    from distill.teachers.embedded import embedded_teacher_dir

    tok = AutoTokenizer.from_pretrained(embedded_teacher_dir())
    byte_of = {c: b for b, c in bytes_to_unicode().items()}
    response = tok.encode(" hello ☃", add_special_tokens=False)
    world = tok.convert_tokens_to_ids("Ġworld")
    assert len(response) == 4 and tok.decode(response[2:3]) == "\ufffd"

    def entry(tid: int, logprob: float) -> dict:
        piece = tok.convert_ids_to_tokens(tid)
        raw = [byte_of[c] for c in piece]
        return {"token": tok.decode([tid]), "logprob": logprob, "bytes": raw}

    base_url, state = fake_server
    top = [
        {"token": "Ġworld", "logprob": -2.0, "bytes": None},
        {"token": "<<no such token>>", "logprob": -3.0, "bytes": None},
    ]
    state.steps = [{**entry(t, -1.0), "top_logprobs": [entry(t, -1.0), *top]} for t in response]
    # The bytes sent are the text's own UTF-8 bytes, as a real server sends them.
    assert bytes(b for step in state.steps for b in step["bytes"]) == " hello ☃".encode()
    out = tmp_path / "out"
    gen_mapping_through_tokenizer(prompts_file, out, base_url)
    rows = read_table(out).to_pylist()
    assert len(rows) == len(PROMPTS)
    for row in rows:
        assert row["token_ids"] == response
        assert row["topk_ids"] == [[t, world] for t in response]
        assert row["response_text"] == " hello ☃"
        # The unmapped entry's probability is left in the tail mass.
        expected_tail = 1 - math.exp(-1.0) - math.exp(-2.0)
        assert row["tail_mass"] == pytest.approx([expected_tail] * 4, abs=1e-6)
    counts = load_manifest(out).counts
    assert counts["unmapped_topk_entries"] == len(response) * len(PROMPTS)
    assert counts["written"] == len(PROMPTS) and counts["failed"] == 0


def gen_mapping_through_tokenizer(prompts_file: Path, out: Path, base_url: str) -> None:
    """A run that maps the server's token strings to ids through the embedded tokenizer."""
    from distill.teachers.embedded import embedded_teacher_dir

    generate_dataset(
        prompts_file,
        out,
        teacher=f"openai:fake-model@{base_url}",
        teacher_options={"token_ids": "tokenizer", "tokenizer": str(embedded_teacher_dir())},
        top_k=3,
        sampling=SamplingParams(max_new_tokens=8),
        progress=False,
    )


def test_unmappable_sampled_token_fails_the_row(fake_server, prompts_file, tmp_path):
    base_url, state = fake_server
    state.steps = [{"token": "<<no such token>>", "logprob": -0.1, "top_logprobs": []}]
    out = tmp_path / "out"
    with pytest.raises(TeacherUnavailableError, match="sampled token"):
        gen_mapping_through_tokenizer(prompts_file, out, base_url)
    failed = [json.loads(line) for line in (out / FAILED_FILE).read_text().splitlines()]
    assert {f["kind"] for f in failed} == {"unmapped_token"} and len(failed) == len(PROMPTS)
    # The replies came back and are billed: their usage is counted all the same.
    assert load_manifest(out).counts["usage_completion_tokens"] == 3 * len(PROMPTS)


@pytest.mark.parametrize(("status", "message"), [(401, "refused the API key"), (404, "not found")])
def test_auth_or_model_error_stops_at_once(fake_server, prompts_file, tmp_path, status, message):
    base_url, state = fake_server
    state.status = status
    with pytest.raises(TeacherUnavailableError, match=message):
        generate_dataset(
            prompts_file,
            tmp_path / "out",
            teacher=f"openai:fake-model@{base_url}",
            teacher_options={"token_ids": "none", "concurrency": 1, "max_retries": 3},
            top_k=3,
            progress=False,
        )
    assert len(state.bodies) == 1  # not retried, and no other row was sent


def test_every_request_failing_stops_loudly(prompts_file, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = tmp_path / "out"
    with pytest.raises(TeacherUnavailableError, match=f"all {len(PROMPTS)} requests failed"):
        generate_dataset(
            prompts_file,
            out,
            teacher=f"openai:fake-model@http://127.0.0.1:{port}/v1",
            teacher_options={"token_ids": "none", "max_retries": 0, "timeout_s": 5},
            top_k=3,
            progress=False,
        )
    failed = [json.loads(line) for line in (out / FAILED_FILE).read_text().splitlines()]
    assert [f["kind"] for f in failed] == ["connection"] * len(PROMPTS)
    assert all(f["attempts"] == 1 and f["reason"].startswith("APIConnectionError") for f in failed)
    counts = load_manifest(out).counts
    assert (counts["written"], counts["failed"], counts["failed_connection"]) == (0, 7, 7)
