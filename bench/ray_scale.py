"""The local engine against Ray with 1 and 2 workers, in one run: `python -m bench.ray_scale`.

  gen     `generate_dataset` with the embedded hf teacher on CPU (greedy, --prompts
          "Write a long, detailed essay about topic number i" prompts, whose answers run
          to --max-new-tokens, as in bench/vllm_bench.py; batches of 4, shards of 4):
          generated tokens per second
  curate  `curate_dataset` with the default recipe (near_dedup included) on a synthetic
          dataset of --tokens response tokens (`bench.synthetic`): response tokens per second

Each Ray run starts a cluster of its own with N CPUs (`EngineConfig(num_cpus=N)`): N
teacher replicas of one CPU each for gen. A Ray figure includes what Ray costs a job of
this size: starting the cluster, starting the actors and loading a teacher in each. Every
figure is printed with its ratio to the local engine measured in the same run. The local
engine's torch uses every core; a Ray replica uses the one it is given (Ray sets its
OMP_NUM_THREADS to 1), so gen also runs locally with torch on one thread ("local 1t"):
on a loaded machine, torch's threads spinning for cores others hold can cost more than
the second core gives.

The curate part needs `curate_dataset(..., engine=)`; without it, it says so and is skipped.

    python -m bench.ray_scale [--parts gen,curate] [--workers 1,2] [--prompts 16]
                              [--max-new-tokens 24] [--tokens 400000] [--work DIR]
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from distill.engine import EngineConfig


def engines(workers: list[int]) -> list[tuple[str, EngineConfig]]:
    return [("local", EngineConfig())] + [
        (f"ray x{n}", EngineConfig(kind="ray", num_cpus=n)) for n in workers
    ]


def timed(run: Callable[[], int]) -> tuple[float, int]:
    """(wall seconds, tokens) of one job."""
    started = time.perf_counter()
    tokens = run()
    return time.perf_counter() - started, tokens


def gen_prompts(path: Path, count: int) -> Path:
    rows = [
        {"prompt": f"Write a long, detailed essay about topic number {i}."} for i in range(count)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def gen_rows(work: Path, args: argparse.Namespace) -> list[tuple[str, float, int]]:
    import torch

    from distill.gen.runner import generate_dataset
    from distill.schemas import SamplingParams

    prompts = gen_prompts(work / "prompts.jsonl", args.prompts)
    runs = engines(args.workers)
    runs.insert(1, ("local 1t", EngineConfig()))
    rows = []
    for name, engine in runs:
        out = work / f"gen-{name.replace(' ', '')}"
        shutil.rmtree(out, ignore_errors=True)

        def job(out: Path = out, engine: EngineConfig = engine) -> int:
            result = generate_dataset(
                prompts, out, sampling=SamplingParams(max_new_tokens=args.max_new_tokens),
                batch_size=4, shard_size=4, progress=False, engine=engine,
            )  # fmt: skip
            return result.tokens_generated

        threads = torch.get_num_threads()
        torch.set_num_threads(1 if name == "local 1t" else threads)
        rows.append((name, *timed(job)))
        torch.set_num_threads(threads)
    return rows


def curate_rows(work: Path, args: argparse.Namespace) -> list[tuple[str, float, int]]:
    from bench.synthetic import SyntheticSpec, build_dataset
    from distill.curate import curate_dataset, default_recipe

    if "engine" not in inspect.signature(curate_dataset).parameters:
        print("curate: skipped, curate_dataset takes no engine= in this tree")
        return []
    data = work / f"synthetic-{args.tokens}"
    if not (data / "manifest.json").is_file():
        build_dataset(data, SyntheticSpec(tokens=args.tokens))
    rows = []
    for name, engine in engines(args.workers):
        out = work / f"curate-{name.replace(' ', '')}"
        shutil.rmtree(out, ignore_errors=True)

        def job(out: Path = out, engine: EngineConfig = engine) -> int:
            curate_dataset(data, out, default_recipe(), engine=engine)  # type: ignore[call-arg]
            return args.tokens

        rows.append((name, *timed(job)))
    return rows


def print_table(part: str, rows: list[tuple[str, float, int]]) -> None:
    if not rows:
        return
    base = rows[0][2] / rows[0][1]
    print(f"\n{part}: {rows[0][2]} tokens")
    print(f"  {'engine':<8} {'seconds':>8} {'tokens/s':>10} {'vs local':>9}")
    for name, seconds, tokens in rows:
        rate = tokens / seconds
        print(f"  {name:<8} {seconds:>8.1f} {rate:>10.1f} {rate / base:>8.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="gen,curate")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=24)
    parser.add_argument("--tokens", type=int, default=400_000, help="curate's dataset size")
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    args.workers = [int(n) for n in args.workers.split(",")]
    work = args.work or Path(tempfile.mkdtemp(prefix="ray-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}, work: {work}")
    parts = {"gen": gen_rows, "curate": curate_rows}
    for part in args.parts.split(","):
        print_table(part, parts[part](work, args))


if __name__ == "__main__":
    main()
