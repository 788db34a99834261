"""Bad 200 replies behind the fault-injecting proxy, through the real client and `distill gen`.

The reported bug: behind such a proxy one truncated body stopped `distill gen` with
"error: Expecting ',' delimiter" and wrote none of the 29 responses already received. Here
one batch holds 29 good prompts and four whose replies the proxy spoils: a body cut in half
(on every attempt, and on the first only), a 200 carrying an error object, and a NaN
log-prob. Each spoiled row must be retried, then listed once in failed.jsonl with its kind
and reason; every other row of the batch must be written; the run must exit 0; and a rerun
with the proxy healed must send exactly the failed rows. Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import json
import math
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.gen.failures import FAILED_FILE
from distill.gen.prompts import load_prompts
from distill.store import load_manifest, read_table
from tests.gen.fault_proxy import FaultProxy
from tests.teachers.test_openai_teacher import RESPONSE_IDS, FakeState, make_handler

pytest.importorskip("openai")

GOOD = 29
MAX_RETRIES = 2
RULES = {
    "[trunc-always]": ["truncated"],
    "[trunc-once]": ["truncated", "ok"],
    "[error200-always]": ["error200"],
    "[nan-always]": ["nan"],
}
FAILING = {  # rule -> the start of the reason recorded in failed.jsonl
    "[trunc-always]": "BadResponse: reply body is not valid JSON (",
    "[error200-always]": "BadResponse: a 200 reply carrying an error: upstream overloaded",
    "[nan-always]": "BadResponse: logprobs.content[0].logprob is nan, not a log-prob",
}


@pytest.fixture
def upstream():
    """The fake chat-completions server of test_openai_teacher (vLLM-style token ids)."""
    state = FakeState()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def tag_of(text: str) -> str:
    return text.split(" ", 1)[0]


def gen_args(prompts: Path, out: Path, url: str) -> list[str]:
    return [
        "gen",
        str(prompts),
        "--out",
        str(out),
        "--teacher",
        f"openai:fake-model@{url}",
        "--teacher-opt",
        f"max_retries={MAX_RETRIES}",
        "--teacher-opt",
        "concurrency=8",
        "--top-k",
        "3",
        "--max-new-tokens",
        "8",
        "--batch-size",
        str(GOOD + len(RULES)),  # one batch: a bad reply must not cost its neighbours
    ]


def test_bad_replies_fail_their_rows_alone_and_the_batch_is_written(
    upstream, tmp_path, monkeypatch
):
    monkeypatch.setattr("distill.teachers.openai_teacher.BAD_REPLY_BACKOFF_S", 0.0)
    prompts = tmp_path / "p.jsonl"
    texts = [f"[ok-{i}] Name colour {i}." for i in range(GOOD)] + [f"{t} Name one." for t in RULES]
    prompts.write_text("".join(json.dumps({"prompt": t}) + "\n" for t in texts))
    out = tmp_path / "out"
    cli = CliRunner()
    with FaultProxy(upstream, RULES) as proxy:
        first = cli.invoke(app, gen_args(prompts, out, proxy.url))
        assert first.exit_code == 0, first.output
        assert "error:" not in first.output and first.exception is None

        rows = read_table(out).to_pylist()
        written = sorted(tag_of(row["messages"][-1]["content"]) for row in rows)
        assert written == sorted([f"[ok-{i}]" for i in range(GOOD)] + ["[trunc-once]"])
        for row in rows:  # what the upstream sent, untouched; nothing non-finite
            assert row["token_ids"] == RESPONSE_IDS
            assert all(math.isfinite(lp) for lp in row["sampled_logprob"])
            assert all(math.isfinite(lp) for top in row["topk_logprobs"] for lp in top)

        failed = [json.loads(line) for line in (out / FAILED_FILE).read_text().splitlines()]
        tag_by_id = {
            r.prompt_id: tag_of(r.messages[-1]["content"]) for r in load_prompts(prompts).rows
        }
        by_tag = {tag_by_id[entry["prompt_id"]]: entry for entry in failed}
        assert sorted(by_tag) == sorted(FAILING) and len(failed) == len(FAILING)
        for tag, reason in FAILING.items():
            entry = by_tag[tag]
            assert entry["kind"] == "bad_response" and entry["reason"].startswith(reason), entry
            assert entry["attempts"] == MAX_RETRIES + 1 == proxy.attempts[tag]
        assert proxy.attempts["[trunc-once]"] == 2
        assert proxy.injected["truncated"] == MAX_RETRIES + 1 + 1

        counts = load_manifest(out).counts
        assert (counts["written"], counts["failed"]) == (GOOD + 1, len(FAILING))
        assert counts["failed_bad_response"] == len(FAILING)
        assert counts["retries"] == proxy.chat_requests - len(texts)

        proxy.healed = True  # the same command sends exactly the failed rows
        before = proxy.chat_requests
        second = cli.invoke(app, gen_args(prompts, out, proxy.url))
        assert second.exit_code == 0, second.output
        assert proxy.chat_requests - before == len(FAILING)
    ids = [row["record_id"] for row in read_table(out).to_pylist()]
    assert len(ids) == len(set(ids)) == len(texts)
    assert (out / FAILED_FILE).read_text() == ""
