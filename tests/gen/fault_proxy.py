"""A small HTTP proxy that injects faults in front of a real server (asyncio, one thread).

Each chat-completion request is matched to a rule by a substring of its last message; the
rule's n-th action answers the n-th attempt of that prompt (the last action repeats):
  "ok"        forward to the upstream server and relay its reply
  "429"       429 with Retry-After (RETRY_AFTER_S)
  "500"       500 with a JSON error body
  "401"       401, as for a wrong API key
  "stall"     read the request, answer nothing for STALL_S, then close
  "drop"      close the socket without a response
  "drop_mid"  send a 200 status line, headers and half of the body, then close
  "truncated" forward, then relay the first half of the upstream's body as a whole 200
              (Content-Length says the half): the client gets a body that is not JSON
  "error200"  a 200 whose JSON body is an error object, not a completion
  "nan"       forward, with the first token's log-prob replaced by NaN
Everything else (GET /version, /health, unmatched prompts) is forwarded. `healed = True`
forwards everything. Counters say what was injected; every connection is closed after
one response (Connection: close), which keeps the framing trivial.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter, defaultdict
from urllib.parse import urlparse

RETRY_AFTER_S = 1
STALL_S = 30.0


class FaultProxy:
    def __init__(self, upstream: str, rules: dict[str, list[str]]) -> None:
        parsed = urlparse(upstream)
        self.upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self.rules = rules
        self.healed = False
        self.lock = threading.Lock()
        self.injected: Counter[str] = Counter()  # action -> times used
        self.attempts: Counter[str] = Counter()  # rule key -> requests seen
        self.times: dict[str, list[float]] = defaultdict(list)
        self.auth: set[str] = set()
        self.chat_requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        tasks = asyncio.all_tasks(self._loop)  # stalled connections still sleeping
        for task in tasks:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        self._loop.close()

    # -- one connection --------------------------------------------------------------
    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = parse_headers(head)
            body = await reader.readexactly(int(headers.get("content-length", "0")))
            action = self._action(head, headers, body)
            await self._answer(action, head, body, writer)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    def _action(self, head: bytes, headers: dict[str, str], body: bytes) -> str:
        if not head.startswith(b"POST") or b"/chat/completions" not in head.split(b"\r\n")[0]:
            return "ok"
        prompt = json.loads(body)["messages"][-1]["content"]
        key = next((k for k in self.rules if k in prompt), prompt)
        with self.lock:
            self.chat_requests += 1
            self.auth.add(headers.get("authorization", ""))
            self.times[key].append(time.monotonic())
            attempt = self.attempts[key]
            self.attempts[key] += 1
            actions = self.rules.get(key, ["ok"])
            action = "ok" if self.healed else actions[min(attempt, len(actions) - 1)]
            self.injected[action] += 1
        return action

    async def _answer(
        self, action: str, head: bytes, body: bytes, writer: asyncio.StreamWriter
    ) -> None:
        if action == "ok":
            writer.write(await self._forward(head, body))
        elif action == "429":
            writer.write(reply(429, {"error": {"message": "slow down"}}, RETRY_AFTER_S))
        elif action == "500":
            writer.write(reply(500, {"error": {"message": "injected failure"}}))
        elif action == "401":
            writer.write(reply(401, {"error": {"message": "invalid api key"}}))
        elif action == "stall":
            await asyncio.sleep(STALL_S)
        elif action in ("truncated", "nan"):
            writer.write(rewrite_body(await self._forward(head, body), action))
        elif action == "error200":
            writer.write(reply(200, {"error": {"message": "upstream overloaded", "code": 503}}))
        elif action == "drop_mid":
            full = reply(200, {"id": "x", "choices": [], "padding": "y" * 200})
            writer.write(full[: len(full) - 120])
        elif action != "drop":
            raise ValueError(f"unknown fault action {action!r}")
        await writer.drain()

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        lines = head.decode("latin-1").split("\r\n")
        kept = [
            line
            for line in lines[1:]
            if line and line.split(":", 1)[0].lower() not in ("connection", "host")
        ]
        host, port = self.upstream
        request = "\r\n".join(
            [lines[0], f"Host: {host}:{port}", "Connection: close", *kept, "", ""]
        )
        up_reader, up_writer = await asyncio.open_connection(host, port)
        up_writer.write(request.encode("latin-1") + body)
        await up_writer.drain()
        data = await up_reader.read()  # until the server closes (Connection: close)
        up_writer.close()
        return data


def parse_headers(head: bytes) -> dict[str, str]:
    out = {}
    for line in head.decode("latin-1").split("\r\n")[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            out[key.strip().lower()] = value.strip()
    return out


def rewrite_body(response: bytes, action: str) -> bytes:
    """The upstream's response with its body cut in half ("truncated") or its first
    sampled log-prob set to NaN ("nan"), and a Content-Length that matches."""
    head, _, body = response.partition(b"\r\n\r\n")
    assert b"chunked" not in head.lower(), "the upstream must send Content-Length"
    if action == "truncated":
        body = body[: len(body) // 2]
    else:
        data = json.loads(body)
        data["choices"][0]["logprobs"]["content"][0]["logprob"] = float("nan")
        body = json.dumps(data).encode()  # Python writes NaN, as a careless server would
    lines = [
        line
        for line in head.decode("latin-1").split("\r\n")
        if not line.lower().startswith("content-length:")
    ]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def reply(status: int, body: dict, retry_after: float | None = None) -> bytes:
    data = json.dumps(body).encode()
    lines = [
        f"HTTP/1.1 {status} X",
        "Content-Type: application/json",
        f"Content-Length: {len(data)}",
        "Connection: close",
    ]
    if retry_after is not None:
        lines.append(f"Retry-After: {retry_after}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data
