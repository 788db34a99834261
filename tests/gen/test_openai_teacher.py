"""The OpenAI-compatible teacher against a fake server on 127.0.0.1 that injects faults.

The fake speaks just enough of the chat-completions API (with vLLM's `token_id:N` tokens
and GET /version), answers a chosen prompt's first request with 429 + Retry-After and
another's with 500, and records timings and how many requests were in flight at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.gen.openai_teacher import OpenAIConfig, load_openai_teacher, parse_openai_target
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table

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


def completion(body: dict) -> dict:
    k = body["top_logprobs"]
    as_ids = body.get("return_tokens_as_token_ids")
    steps = []
    for tid in RESPONSE_IDS:
        name = f"token_id:{tid}" if as_ids else "x"
        top = [
            {"token": f"token_id:{tid + j}" if as_ids else "x", "logprob": -0.1 - j, "bytes": None}
            for j in range(k)
        ]
        steps.append({"token": name, "logprob": -0.1, "bytes": None, "top_logprobs": top})
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
    from distill.gen.embedded import embedded_teacher_dir

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
