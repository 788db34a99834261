"""KD step time against SFT, and the loss's peak memory against sequence length, on a GPU
at a real model's head size. Every figure is a ratio to a baseline from the same run.

    python -m bench.kd_step_gpu [--vocab 128256] [--hidden 2048] [--tokens 8192] [--k 20]

The CPU version (`bench/kd_step.py`) uses a tiny head; here the head is Llama-3.2-1B's
shape (V = 128256, H = 2048) in bfloat16, where the [tokens, V] logits are what costs.
Step = forward + backward of LM head and loss from leaf hidden states and head weight:
SFT = cross-entropy on full logits (`hard_label_loss`, what `HardLabelTrainer` runs),
KD = `distill_loss` on full logits (chunking off) and `chunked_distill_loss` (on).
Timed with CUDA events, median of 10 after 3 warm-ups. Memory = peak allocated by torch
during one step minus what was allocated before it (inputs and weights excluded);
lengths where a variant runs out of memory say so.
"""

from __future__ import annotations

import argparse

import torch

# The same forward + backward as the CPU bench; only the inputs' size and device differ.
from bench.kd_step import loss_step as step
from distill.train.losses import TeacherTargets


def make_inputs(n: int, vocab: int, hidden: int, k: int, seed: int = 0) -> dict:
    gen = torch.Generator(device="cuda").manual_seed(seed)
    teacher = torch.randn(n, 4 * k, generator=gen, device="cuda")
    lps = torch.log_softmax(teacher, -1)[:, :k] - 0.05  # a peaked teacher's top-k
    ids = torch.randint(0, vocab, (n, k), generator=gen, device="cuda")
    weight = torch.randn(vocab, hidden, generator=gen, device="cuda") * 0.02
    return {
        "hidden": torch.randn(n, hidden, generator=gen, device="cuda").bfloat16(),
        "weight": weight.bfloat16(),
        "targets": TeacherTargets(ids, lps, (1.0 - lps.exp().sum(-1)).clamp(min=0.0)),
        "labels": ids[:, 0].clone(),
    }


def median_ms(fn, repeats: int = 10, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def peak_mb(x: dict, kind: str, chunk: int | None) -> float | None:
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    try:
        step(x, kind, chunk)
        torch.cuda.synchronize()
    except torch.OutOfMemoryError:
        return None
    return (torch.cuda.max_memory_allocated() - before) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--tokens", type=int, default=8192, help="positions per step")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--chunk-size", type=int, default=2048)
    parser.add_argument("--lengths", type=int, nargs="+", default=[2048, 8192, 32768, 65536])
    args = parser.parse_args()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    step_table(args)
    memory_table(args)


def step_table(args: argparse.Namespace) -> None:
    x = make_inputs(args.tokens, args.vocab, args.hidden, args.k)
    print(
        f"\nstep time: {args.tokens} positions, V = {args.vocab}, H = {args.hidden}, "
        f"k = {args.k}, bf16 head, median of 10 (ms, ratio to SFT)"
    )
    sft = median_ms(lambda: step(x, "sft", None))
    print(f"  {'SFT (CE, full logits)':34s} {sft:8.2f}  1.000")
    for divergence in ("forward_kl", "reverse_kl", "jsd"):
        for chunk in (None, args.chunk_size):
            ms = median_ms(lambda d=divergence, c=chunk: step(x, "kd", c, d))
            name = f"KD {divergence}, " + ("unchunked" if chunk is None else f"chunk {chunk}")
            print(f"  {name:34s} {ms:8.2f}  {ms / sft:.3f}")


def memory_table(args: argparse.Namespace) -> None:
    print(f"\nloss peak memory (MB allocated during one step), chunk = {args.chunk_size}")
    print(f"  {'L':>6s} {'SFT':>9s} {'KD off':>9s} {'KD on':>9s} {'on/off':>7s} {'on/first':>8s}")
    first = None
    for length in args.lengths:
        x = make_inputs(length, args.vocab, args.hidden, args.k)
        sft_m, off, on = (peak_mb(x, "sft", None), peak_mb(x, "kd", None),
                          peak_mb(x, "kd", args.chunk_size))  # fmt: skip
        del x
        first = first or on
        cells = [f"{v:9.0f}" if v is not None else f"{'OOM':>9s}" for v in (sft_m, off, on)]
        ratio = f"{on / off:7.3f}" if on and off else f"{'-':>7s}"
        growth = f"{on / first:8.2f}" if on and first else f"{'-':>8s}"
        print(f"  {length:6d} {' '.join(cells)} {ratio} {growth}")


if __name__ == "__main__":
    main()
