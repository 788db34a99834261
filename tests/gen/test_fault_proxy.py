"""The API teacher against the real vLLM server behind a proxy that injects faults.

The proxy (tests/gen/fault_proxy.py) answers chosen prompts' attempts with 429 +
Retry-After, 500, a stall past the client's timeout, or a dropped connection (before the
response, and in the middle of its body); other attempts reach the real server. Five
prompts fail on every attempt. We check that every prompt ends written exactly once or
listed once in failed.jsonl with the right kind, that the counts in the manifest and the
CLI's summary match what the proxy did, that a rerun with the proxy healed fills in
exactly the failed rows, and that the API key is in no file, log line or output.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.gen.failures import FAILED_FILE
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table
from distill.teachers.backend import TeacherUnavailableError
from tests.gen.conftest import SERVED_MAX_LOGPROBS, SERVED_MODEL, requires_vllm
from tests.gen.fault_proxy import RETRY_AFTER_S, FaultProxy

pytestmark = requires_vllm
pytest.importorskip("openai")

SECRET = "sk-fault-test-NEVER-WRITE-7731"
KEY_ENV = "DISTILL_FAULT_TEST_KEY"
TOP_K = SERVED_MAX_LOGPROBS
MAX_NEW = 6
TIMEOUT_S = 4.0
MAX_RETRIES = 3  # one spare over the worst transient rule, in case a healthy reply is slow
PRICE_IN, PRICE_OUT = 0.5, 1.5
RULES = {
    "[ok-a]": ["ok"],
    "[ok-b]": ["ok"],
    "[429-once]": ["429", "ok"],
    "[500-twice]": ["500", "500", "ok"],
    "[stall-once]": ["stall", "ok"],
    "[drop-once]": ["drop", "ok"],
    "[dropmid-once]": ["drop_mid", "ok"],
    "[429-always]": ["429"],
    "[500-always]": ["500"],
    "[stall-always]": ["stall"],
    "[drop-always]": ["drop"],
    "[dropmid-always]": ["drop_mid"],
}
PERMANENT = {  # rule -> failure kind and the exception class its reason names
    "[429-always]": ("rate_limited", "RateLimitError 429"),
    "[500-always]": ("server_error", "InternalServerError 500"),
    "[stall-always]": ("timeout", "APITimeoutError"),
    "[drop-always]": ("connection", "APIConnectionError"),
    "[dropmid-always]": ("connection", "APIConnectionError"),
}
FRUITS = ["apple", "pear", "plum", "fig", "kiwi", "lime", "date", "grape", "melon", "peach"]


def tag_of(text: str) -> str:
    return text.split(" ", 1)[0]


@pytest.fixture(scope="module")
def prompts_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("fault-prompts") / "p.jsonl"
    lines = [
        {"prompt": f"{tag} What colour is a {FRUITS[i % len(FRUITS)]}?"}
        for i, tag in enumerate(RULES)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def gen_args(prompts: Path, out: Path, url: str) -> list[str]:
    opts = {"timeout_s": TIMEOUT_S, "max_retries": MAX_RETRIES, "concurrency": len(RULES)}
    return [
        "gen",
        str(prompts),
        "--out",
        str(out),
        "--teacher",
        f"openai:{SERVED_MODEL}@{url}",
        *(arg for key, value in opts.items() for arg in ("--teacher-opt", f"{key}={value}")),
        "--api-key-env",
        KEY_ENV,
        "--top-k",
        str(TOP_K),
        "--max-new-tokens",
        str(MAX_NEW),
        "--price-input",
        str(PRICE_IN),
        "--price-output",
        str(PRICE_OUT),
    ]


def rows_by_tag(out: Path) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for row in read_table(out).to_pylist():
        found.setdefault(tag_of(row["messages"][-1]["content"]), []).append(row)
    return found


def failed_entries(out: Path) -> list[dict]:
    text = (out / FAILED_FILE).read_text()
    return [json.loads(line) for line in text.splitlines() if line]


def test_faults_end_written_once_or_failed_and_rerun_fills_them(
    vllm_server, prompts_file, tmp_path, monkeypatch, caplog
):
    # The same prompts straight to the server: what the records must hold (and a warm-up).
    direct = tmp_path / "direct"
    generate_dataset(
        prompts_file,
        direct,
        teacher=f"openai:{SERVED_MODEL}@{vllm_server}",
        teacher_options={"concurrency": len(RULES)},
        top_k=TOP_K,
        sampling=SamplingParams(max_new_tokens=MAX_NEW),
        progress=False,
    )
    expected = {tag: rows[0] for tag, rows in rows_by_tag(direct).items()}
    assert set(expected) == set(RULES)

    monkeypatch.setenv(KEY_ENV, SECRET)
    caplog.set_level(logging.DEBUG)  # the openai client's and httpx's debug lines too
    out = tmp_path / "out"
    cli = CliRunner()
    with FaultProxy(vllm_server, RULES) as proxy:
        first = cli.invoke(app, gen_args(prompts_file, out, proxy.url))
        assert first.exit_code == 0, first.output
        written, failed = rows_by_tag(out), failed_entries(out)

        # Every prompt: exactly one record, or exactly one failed entry with the right kind.
        assert sorted(written) == sorted(set(RULES) - set(PERMANENT))
        assert all(len(rows) == 1 for rows in written.values())
        tag_by_prompt = {row["prompt_id"]: tag for tag, row in expected.items()}
        by_tag = {tag_by_prompt[entry["prompt_id"]]: entry for entry in failed}
        assert len(by_tag) == len(failed) == len(PERMANENT)
        for tag, (kind, reason) in PERMANENT.items():
            entry = by_tag[tag]
            assert entry["kind"] == kind and entry["reason"].startswith(reason), entry
            assert entry["attempts"] == MAX_RETRIES + 1 == proxy.attempts[tag]
            assert entry["record_id"] == expected[tag]["record_id"]
        print("failure reasons:", *(e["reason"] for e in failed), sep="\n  ")
        # The two drops reach the client as different httpx errors: before and mid-body.
        assert "without sending a response" in by_tag["[drop-always]"]["reason"]
        assert "complete message body" in by_tag["[dropmid-always]"]["reason"]

        # The faults were injected: each fault rule's attempts reached the proxy.
        for tag, actions in RULES.items():
            if tag not in PERMANENT:
                assert proxy.attempts[tag] >= len(actions), (tag, proxy.attempts)
        assert proxy.injected["stall"] >= 1 + MAX_RETRIES + 1
        assert proxy.injected["drop"] >= 1 + MAX_RETRIES + 1
        assert proxy.injected["drop_mid"] >= 1 + MAX_RETRIES + 1
        assert proxy.injected["429"] >= 1 + MAX_RETRIES + 1
        assert proxy.injected["500"] >= 2 + MAX_RETRIES + 1
        gaps = proxy.times["[429-once]"]
        assert gaps[1] - gaps[0] >= RETRY_AFTER_S - 0.1  # Retry-After was honoured

        # The manifest's counts and the summary say the same.
        manifest = load_manifest(out)
        counts = manifest.counts
        assert counts["written"] == counts["rows"] == len(RULES) - len(PERMANENT)
        assert counts["failed"] == len(PERMANENT)
        assert counts["failed_connection"] == 2
        for kind in ("rate_limited", "server_error", "timeout"):
            assert counts[f"failed_{kind}"] == 1
        assert counts["retries"] == proxy.chat_requests - len(RULES)
        tokens = sum(len(rows[0]["token_ids"]) for rows in written.values())
        assert counts["usage_completion_tokens"] == tokens
        cost = (counts["usage_prompt_tokens"] * PRICE_IN + tokens * PRICE_OUT) / 1e6
        assert manifest.stats["cost_usd"] == pytest.approx(cost)
        assert manifest.params["price_input_usd_per_1m"] == PRICE_IN
        for key in ("written", "failed_timeout", "failed_connection", "retries", "cost_usd"):
            assert key in first.output
        assert f"{len(PERMANENT)} rows failed" in first.output

        # The records hold what the server returns without the proxy.
        for tag, rows in written.items():
            assert rows[0]["record_id"] == expected[tag]["record_id"]
            assert rows[0]["token_ids"] == expected[tag]["token_ids"]
            assert rows[0]["topk_ids"] == expected[tag]["topk_ids"]

        # Healed: the same command sends exactly the failed rows.
        proxy.healed = True
        before = proxy.chat_requests
        second = cli.invoke(app, gen_args(prompts_file, out, proxy.url))
        assert second.exit_code == 0, second.output
        assert proxy.chat_requests - before == len(PERMANENT)
    rows = read_table(out).to_pylist()
    ids = [row["record_id"] for row in rows]
    assert len(ids) == len(set(ids)) == len(RULES)
    assert set(ids) == {row["record_id"] for row in expected.values()}
    assert failed_entries(out) == []
    counts = load_manifest(out).counts
    assert (counts["written"], counts["failed"]) == (len(PERMANENT), 0)
    assert counts["skipped_existing"] == len(RULES) - len(PERMANENT)

    # The key reached the server, and nothing else: no file, log line or output has it.
    assert proxy.auth == {f"Bearer {SECRET}"}
    for path in out.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in first.output + second.output
    assert SECRET not in caplog.text
    assert any("Retrying request" in r.getMessage() for r in caplog.records)


def test_auth_and_unknown_model_stop_the_run(vllm_server, prompts_file, tmp_path, monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    with FaultProxy(vllm_server, {"": ["401"]}) as proxy:
        with pytest.raises(TeacherUnavailableError, match="refused the API key") as err:
            generate_dataset(
                prompts_file,
                tmp_path / "auth",
                teacher=f"openai:{SERVED_MODEL}@{proxy.url}",
                teacher_options={"concurrency": 1, "max_retries": 3},
                api_key_env=KEY_ENV,
                top_k=TOP_K,
                sampling=SamplingParams(max_new_tokens=MAX_NEW),
                progress=False,
            )
        assert proxy.chat_requests == 1  # no retry, no second request
    assert SECRET not in str(err.value)
    with pytest.raises(TeacherUnavailableError, match="'no-such-model' or the endpoint"):
        generate_dataset(
            prompts_file,
            tmp_path / "model",
            teacher=f"openai:no-such-model@{vllm_server}",
            top_k=TOP_K,
            sampling=SamplingParams(max_new_tokens=MAX_NEW),
            progress=False,
        )
