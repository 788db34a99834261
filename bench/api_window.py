"""The API teacher's request window: batch by batch (before) against streamed (now).

    python bench/api_window.py [--prompts 640] [--concurrency 64] [--repeats 2] [--seed 0]
                               [--latency-scale 1.0]

A loopback OpenAI-compatible server (bench/api_server.py, its own process, 127.0.0.1 only)
answers each prompt after a seeded latency: uniform 50-400 ms, and 5% of the prompts stall
for 500 ms. `distill gen` runs the same prompts against it with `--teacher-opt
concurrency=N`, twice per repeat, alternating:
  batch   `generate` per batch of N rows (one `asyncio.run` each): every batch waits for
          its slowest request, as the run did before streaming;
  stream  `generate_stream`: N requests in flight throughout.
For each, from the server's own timestamps: the ideal rate (N / mean latency served), the
achieved requests/s while the input lasts (the steady state: the (prompts - N) requests
sent after the first N, over the time from the first request to the last one sent; each
of them was sent when one in flight completed) and its ratio to the ideal (goal: stream
>= 0.9), and the rate over the whole span from the first request to the last reply (which
adds the drain of the last window, about one latency, whatever the client does). The
whole gen wall time is printed too, and the client's CPU time per request (user + system,
all threads): the client is one Python process, so near 1000 / (CPU ms per request)
requests/s it is CPU-bound whatever its window. On a loaded machine, `--latency-scale 4`
(200-1600 ms, stalls of 2 s) shows the window with the CPU out of the way. Bounded: N
prompts a run, a 30 s request timeout, and the server exits by itself after 10 minutes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import platform
import resource
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from bench.api_server import LatencyPlan, run_server
from distill.gen.runner import generate_dataset
from distill.schemas import SamplingParams
from distill.teachers.backend import Generation
from distill.teachers.openai_teacher import OpenAIConfig, OpenAITeacher, load_openai_teacher

SERVER_LIFETIME_S = 600.0


class BatchOnly(OpenAITeacher):
    """The same teacher on the batch path: a subclass that overrides `generate` is run a
    batch at a time (`distill.teachers.backend.streams`)."""

    def generate(self, *args, **kwargs) -> list[Generation]:  # type: ignore[no-untyped-def]
        return super().generate(*args, **kwargs)


def server_spans(base_url: str) -> list[tuple[float, float]]:
    root = base_url.removesuffix("/v1")
    with urllib.request.urlopen(f"{root}/stats", timeout=10) as reply:
        return [tuple(span) for span in json.loads(reply.read())["spans"]]


def one_run(teacher: OpenAITeacher, prompts: Path, out: Path, args: argparse.Namespace) -> dict:
    server_spans(teacher.base_url)  # clears the server's log
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    result = generate_dataset(
        prompts,
        out,
        teacher=teacher,
        top_k=5,
        sampling=SamplingParams(max_new_tokens=8),
        batch_size=args.concurrency,
        shard_size=256,
        progress=False,
    )
    wall = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = sum(getattr(cpu_after, f) - getattr(cpu_before, f) for f in ("ru_utime", "ru_stime"))
    spans = server_spans(teacher.base_url)
    assert result.records_written == args.prompts == len(spans), (result, len(spans))
    starts = sorted(start for start, _ in spans)
    span = max(end for _, end in spans) - starts[0]
    mean_latency = statistics.fmean(end - start for start, end in spans)
    steady = (len(spans) - args.concurrency) / (starts[-1] - starts[0])
    ideal = args.concurrency / mean_latency
    return {
        "requests": len(spans),
        "span_s": span,
        "gen_wall_s": wall,
        "mean_latency_ms": 1000 * mean_latency,
        "achieved_rps": steady,
        "ideal_rps": ideal,
        "ratio": steady / ideal,
        "span_rps": len(spans) / span,
        "span_ratio": len(spans) / span / ideal,
        "cpu_ms_per_request": 1000 * cpu / len(spans),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=640)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--latency-scale", type=float, default=1.0)
    args = parser.parse_args()
    scale = args.latency_scale
    plan = LatencyPlan(
        prompts=args.prompts,
        seed=args.seed,
        low_s=0.05 * scale,
        high_s=0.40 * scale,
        stall_s=0.50 * scale,
    )
    context = multiprocessing.get_context("spawn")
    ports = context.Queue()
    server = context.Process(target=run_server, args=(plan, ports, SERVER_LIFETIME_S), daemon=True)
    server.start()
    try:
        url = f"http://127.0.0.1:{ports.get(timeout=60)}/v1"
        config = OpenAIConfig(concurrency=args.concurrency, timeout_s=30, max_retries=0)
        stream = load_openai_teacher(f"bench@{url}", config)
        fields = {f.name: getattr(stream, f.name) for f in dataclasses.fields(stream)}
        teachers = {"batch": BatchOnly(**fields), "stream": stream}
        rows: dict[str, list[dict]] = {name: [] for name in teachers}
        with tempfile.TemporaryDirectory() as tmp:
            prompts = Path(tmp) / "prompts.jsonl"
            lines = (json.dumps({"prompt": f"Q{i} name a colour."}) for i in range(args.prompts))
            prompts.write_text("\n".join(lines) + "\n")
            for repeat in range(args.repeats):
                for name, teacher in teachers.items():
                    out = Path(tmp) / f"{name}-{repeat}"
                    rows[name].append(one_run(teacher, prompts, out, args))
    finally:
        server.terminate()
        server.join(10)
    print(f"# {platform.processor() or platform.machine()}, python {platform.python_version()}")
    low, high, stall = (1000 * x for x in (plan.low_s, plan.high_s, plan.stall_s))
    print(
        f"# {args.prompts} prompts, concurrency {args.concurrency}, latency {low:.0f}-{high:.0f}"
        f" ms + 5% stalls of {stall:.0f} ms (seed {args.seed}), {args.repeats} repeats, median"
    )
    print(
        f"{'path':8}{'req/s':>8}{'ideal':>8}{'ratio':>7}{'span req/s':>12}{'ratio':>7}"
        f"{'mean ms':>9}{'span s':>8}{'gen s':>7}{'cpu ms/req':>12}"
    )
    for name, runs in rows.items():
        med = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        print(
            f"{name:8}{med['achieved_rps']:8.1f}{med['ideal_rps']:8.1f}{med['ratio']:7.2f}"
            f"{med['span_rps']:12.1f}{med['span_ratio']:7.2f}{med['mean_latency_ms']:9.0f}"
            f"{med['span_s']:8.2f}{med['gen_wall_s']:7.2f}{med['cpu_ms_per_request']:12.2f}"
        )


if __name__ == "__main__":
    main()
