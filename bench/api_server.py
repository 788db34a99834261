"""A loopback OpenAI-compatible chat-completions server with seeded latency, for
bench/api_window.py. Runs in its own process (so its work does not share the client's GIL),
on 127.0.0.1 only, and exits by itself after `lifetime_s`.

Prompt "Q<i> ..." is answered after `latencies[i]` seconds: uniform jitter between
`low_s` and `high_s`, except a seeded few (`stall_share`) that stall for `stall_s`. The reply
holds `tokens` tokens in vLLM's `token_id:N` form with the requested `top_logprobs`; GET
/version says vLLM, so distill asks for token ids. GET /stats returns every chat
request's (start, end) times (monotonic clock) and clears them.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class LatencyPlan:
    prompts: int
    seed: int = 0
    low_s: float = 0.05
    high_s: float = 0.40
    stall_share: float = 0.05
    stall_s: float = 0.50
    tokens: int = 8

    def latencies(self) -> list[float]:
        rng = random.Random(self.seed)
        return [
            self.stall_s
            if rng.random() < self.stall_share
            else rng.uniform(self.low_s, self.high_s)
            for _ in range(self.prompts)
        ]


def completion(body: dict, tokens: int) -> dict:
    k = int(body.get("top_logprobs") or 1)
    steps = []
    for t in range(tokens):
        top = [
            {"token": f"token_id:{t + 10 + j}", "logprob": -0.1 - j, "bytes": None}
            for j in range(k)
        ]
        steps.append(
            {"token": f"token_id:{t + 10}", "logprob": -0.1, "bytes": None, "top_logprobs": top}
        )
    return {
        "id": "cmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": body["model"],
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "x" * tokens},
                "finish_reason": "length",
                "logprobs": {"content": steps},
            }
        ],
        "usage": {"prompt_tokens": 10, "completion_tokens": tokens, "total_tokens": 10 + tokens},
    }


def http_reply(body: dict) -> bytes:
    data = json.dumps(body).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\n\r\n"
    )
    return head.encode() + data


async def serve(plan: LatencyPlan, port_out: object, lifetime_s: float) -> None:
    latencies = plan.latencies()
    spans: list[tuple[float, float]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:  # keep-alive: one request after another on this connection
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                size = next(
                    (int(x.split(":")[1]) for x in lines if x.lower().startswith("content-length")),
                    0,
                )
                raw = await reader.readexactly(size)
                if lines[0].startswith("GET /version"):
                    writer.write(http_reply({"version": "bench"}))
                elif lines[0].startswith("GET /stats"):
                    writer.write(http_reply({"spans": spans[:]}))
                    spans.clear()
                else:
                    start = time.monotonic()
                    body = json.loads(raw)
                    index = int(body["messages"][-1]["content"].split()[0][1:])
                    await asyncio.sleep(latencies[index])
                    writer.write(http_reply(completion(body, plan.tokens)))
                    spans.append((start, time.monotonic()))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    port_out.put(server.sockets[0].getsockname()[1])  # type: ignore[attr-defined]
    async with server:
        await asyncio.sleep(lifetime_s)  # bounded: the server never outlives the bench


def run_server(plan: LatencyPlan, port_out: object, lifetime_s: float) -> None:
    asyncio.run(serve(plan, port_out, lifetime_s))
