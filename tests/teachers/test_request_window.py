"""The API teacher keeps its window of requests full across batch boundaries: a stalled
request holds up its own row only, and the run writes the others as they complete."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import read_table
from distill.teachers.backend import Generation, GenRequest, streams
from distill.teachers.openai_teacher import OpenAIConfig, OpenAITeacher
from tests.teachers.test_openai_teacher import RESPONSE_IDS, completion

pytest.importorskip("openai")

STALL_S = 3.0
CONCURRENCY = 4
PROMPTS = [f"Question {i}" for i in range(40)]
PROMPTS[5] = "STALL me"  # in the second batch: the client is warm by then


class Log:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.spans: dict[str, tuple[float, float]] = {}  # prompt -> (start, end)
        self.in_flight = self.max_in_flight = 0


def make_handler(log: Log):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            prompt = body["messages"][-1]["content"]
            start = time.monotonic()
            with log.lock:
                log.in_flight += 1
                log.max_in_flight = max(log.max_in_flight, log.in_flight)
            time.sleep(STALL_S if "STALL" in prompt else 0.03)
            data = json.dumps(completion(body)).encode()
            with log.lock:
                log.in_flight -= 1
                log.spans[prompt] = (start, time.monotonic())
            try:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client cancelled this request (closing the stream does)

    return Handler


@pytest.fixture
def server():
    log = Log()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(log))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/v1", log
    finally:
        httpd.shutdown()
        httpd.server_close()


class BatchOnly(OpenAITeacher):
    """Overrides `generate` alone, so the run keeps to the batch path (`streams`)."""

    def generate(self, *args, **kwargs) -> list[Generation]:
        return super().generate(*args, **kwargs)


def teacher(url: str, batch_only: bool = False) -> OpenAITeacher:
    config = OpenAIConfig(concurrency=CONCURRENCY, timeout_s=10, max_retries=0)
    api = OpenAITeacher("m", url, "EMPTY", config, mode="vllm")
    return (
        BatchOnly(**{f.name: getattr(api, f.name) for f in dataclasses.fields(api)})
        if (batch_only)
        else api
    )


def started_during_stall(log: Log) -> int:
    stall_start, stall_end = log.spans["STALL me"]
    return sum(stall_start < start < stall_end for start, _ in log.spans.values())


def run_gen(url: str, out: Path, prompts: Path, batch_only: bool = False) -> None:
    generate_dataset(
        prompts,
        out,
        teacher=teacher(url, batch_only),
        top_k=3,
        sampling=SamplingParams(max_new_tokens=4),
        batch_size=CONCURRENCY,
        shard_size=8,
        progress=False,
    )


def test_a_stall_holds_up_its_own_row_only(server, tmp_path: Path) -> None:
    url, log = server
    prompts = tmp_path / "p.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS))
    assert streams(teacher(url)) and not streams(teacher(url, batch_only=True))

    run_gen(url, tmp_path / "stream", prompts)
    # The other rows (~30 ms each, 3 slots free) kept going out while the stall lasted,
    # far past the batch of 4 the stalled row was in (all 34 after it on an idle machine,
    # fewer on a loaded one; the batch path below can never pass 3).
    assert started_during_stall(log) > 2 * CONCURRENCY
    assert log.max_in_flight == CONCURRENCY
    rows = read_table(tmp_path / "stream").to_pylist()
    assert sorted(row["messages"][-1]["content"] for row in rows) == sorted(PROMPTS)
    assert all(row["token_ids"] == RESPONSE_IDS for row in rows)

    log.spans.clear()
    run_gen(url, tmp_path / "batch", prompts, batch_only=True)
    # Batch by batch, the stall's batch waits for it: only its 3 batch-mates ran meanwhile.
    assert started_during_stall(log) <= CONCURRENCY - 1


def test_stream_yields_in_completion_order_and_closing_cancels(server) -> None:
    url, _ = server
    api = teacher(url)
    chats = [[{"role": "user", "content": p}] for p in ["STALL me", *PROMPTS[:5]]]
    requests = ((i, GenRequest([], i, chat)) for i, chat in enumerate(chats))
    results = api.generate_stream(requests, SamplingParams(max_new_tokens=4), 3)
    first = [next(results) for _ in range(5)]
    assert sorted(tag for tag, _ in first) == [1, 2, 3, 4, 5]  # the stalled row 0 comes last
    assert all(gen.token_ids == RESPONSE_IDS and gen.attempts == 1 for _, gen in first)
    started = time.monotonic()
    results.close()  # the stalled request is cancelled, not waited for
    assert time.monotonic() - started < STALL_S / 2


def test_answers_in_flight_when_one_fails_are_yielded_before_the_error():
    import asyncio

    from distill.teachers.request_window import BackgroundLoop, stream_window

    async def ask(i: int) -> int:
        # Request 0 fails at once; 1-3 were already sent and answer after it.
        await asyncio.sleep(0.0 if i == 0 else 0.05)
        if i == 0:
            raise PermissionError("401: key revoked")
        return i * 10

    got: list[tuple[int, int]] = []
    with BackgroundLoop() as loop, pytest.raises(PermissionError, match="key revoked"):
        for tag, answer in stream_window(((i, i) for i in range(10)), ask, 4, loop):
            got.append((tag, answer))
    # The three answered requests are kept; none past the window was sent after the error.
    assert sorted(got) == [(1, 10), (2, 20), (3, 30)]
