"""KD step time against SFT on the same batch, and the loss's peak memory against sequence
length with chunking on and off. Every figure is a ratio to a baseline from the same run.

    python bench/kd_step.py [--lengths 512 1024 2048 4096 8192] [--chunk-size 1024]

Step time: a tiny LM (embedding + one hidden layer + LM head, V = 49152, H = 64) on one
batch of 8 x 128 response tokens, k = 20, forward + backward of the LM head and loss,
median of 5, one torch thread. SFT = cross-entropy on full logits (`hard_label_loss`,
what `HardLabelTrainer` runs); KD = `distill_loss` on full logits (chunking off) and
`chunked_distill_loss` (chunking on), for each divergence.

Memory: for each sequence length (one sequence, every position a response token) a fresh
subprocess builds the hidden states, the head and the top-k targets, then runs the loss's
forward + backward. Peak = growth of the resident high-water mark (VmHWM, reset just
before via /proc/self/clear_refs; getrusage's maxrss cannot be reset) across that step, so
it counts the loss and its gradients, not torch or the inputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import torch

from distill.train.chunked_loss import chunked_distill_loss
from distill.train.losses import LossSpec, TeacherTargets, distill_loss, hard_label_loss

VOCAB, HIDDEN, K = 49152, 64, 20


def inputs(n: int, seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(seed)
    teacher = torch.randn(n, 4 * K, generator=gen)  # top-k of a peaked teacher: k logits
    lps = torch.log_softmax(teacher, -1)[:, :K] - 0.05
    ids = torch.randint(0, VOCAB, (n, K), generator=gen)
    return {
        "hidden": torch.randn(n, HIDDEN, generator=gen),
        "weight": torch.randn(VOCAB, HIDDEN, generator=gen) * 0.05,
        "targets": TeacherTargets(ids, lps, (1.0 - lps.exp().sum(-1)).clamp(min=0.0)),
        "labels": ids[:, 0].clone(),
    }


def loss_step(x: dict, kind: str, chunk_size: int | None, divergence: str = "forward_kl") -> None:
    """Forward + backward of LM head and loss from leaf hidden states and head weight."""
    hidden = x["hidden"].detach().requires_grad_(True)
    weight = x["weight"].detach().requires_grad_(True)
    if kind == "sft":
        hard_label_loss(hidden @ weight.T, x["labels"]).backward()
    elif chunk_size is None:
        logits = hidden @ weight.T
        loss = distill_loss(logits, x["targets"], x["labels"], LossSpec(divergence=divergence))
        loss.loss.backward()
    else:
        chunked_distill_loss(
            hidden, weight, None, x["targets"], x["labels"], LossSpec(divergence=divergence),
            chunk_size=chunk_size,
        ).loss.backward()  # fmt: skip


def step_times(chunk_size: int, batch: int = 8, length: int = 128, repeats: int = 5) -> list:
    """(name, median seconds) of a full tiny-LM step for SFT and each KD variant."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Embedding(VOCAB, HIDDEN), torch.nn.Linear(HIDDEN, HIDDEN), torch.nn.Tanh()
    )
    head = torch.nn.Linear(HIDDEN, VOCAB, bias=False)
    tokens = torch.randint(0, VOCAB, (batch * length,))
    x = inputs(batch * length)

    def run(kind: str, chunk: int | None, divergence: str) -> None:
        hidden = model(tokens)
        if kind == "sft":
            hard_label_loss(head(hidden), x["labels"]).backward()
        elif chunk is None:
            spec = LossSpec(divergence=divergence)
            parts = distill_loss(head(hidden), x["targets"], x["labels"], spec)
            parts.loss.backward()
        else:
            chunked_distill_loss(
                hidden, head.weight, None, x["targets"], x["labels"],
                LossSpec(divergence=divergence), chunk_size=chunk,
            ).loss.backward()  # fmt: skip

    variants = [("sft", "sft", None, "")]
    for divergence in ("forward_kl", "reverse_kl", "jsd"):
        variants.append((f"kd {divergence} unchunked", "kd", None, divergence))
        variants.append((f"kd {divergence} chunk {chunk_size}", "kd", chunk_size, divergence))
    times: dict[str, list[float]] = {name: [] for name, *_ in variants}
    for _ in range(repeats):
        for name, kind, chunk, divergence in variants:
            model.zero_grad()
            head.zero_grad()
            start = time.perf_counter()
            run(kind, chunk, divergence)
            times[name].append(time.perf_counter() - start)
    return [(name, sorted(v)[len(v) // 2]) for name, v in times.items()]


def _status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024  # kB
    raise KeyError(field)


def _reset_peak() -> None:
    """Reset the RSS high-water mark (Linux: "5" > /proc/self/clear_refs), so the peak
    measured is this step's and not the transient peak of importing torch."""
    Path("/proc/self/clear_refs").write_text("5")


def memory_child(length: int, kind: str, chunk_size: int | None) -> dict:
    """Run in a fresh process: peak RSS growth of one loss forward + backward."""
    torch.set_num_threads(1)
    x = inputs(length)
    _reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    loss_step(x, kind, chunk_size)
    seconds = time.perf_counter() - start
    return {"peak_mb": _status_mb("VmHWM") - before, "seconds": seconds}


def measure_memory(length: int, kind: str, chunk_size: int | None) -> dict:
    code = (
        "import json, sys; from bench.kd_step import memory_child; "
        f"print(json.dumps(memory_child({length}, {kind!r}, {chunk_size!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096, 8192])
    parser.add_argument("--chunk-size", type=int, default=1024)
    parser.add_argument("--step-chunk-size", type=int, default=256)
    args = parser.parse_args()
    torch.set_num_threads(1)

    print(f"step time, B = 8, L = 128, V = {VOCAB}, H = {HIDDEN}, k = {K}, 1 thread, median of 5")
    rows = step_times(args.step_chunk_size)
    sft = rows[0][1]
    for name, seconds in rows:
        print(f"  {name:32s} {seconds * 1e3:8.1f} ms  ratio to SFT {seconds / sft:6.3f}")

    print(f"\nloss peak memory (RSS growth, MB), one sequence, chunk = {args.chunk_size}")
    print(f"  {'length':>6s} {'sft':>8s} {'kd off':>8s} {'kd on':>8s} {'on/off':>7s} "
          f"{'off/512':>8s} {'on/512':>7s} {'t off s':>8s} {'t on s':>7s}")  # fmt: skip
    first: dict[str, float] = {}
    for length in args.lengths:
        sft_m = measure_memory(length, "sft", None)
        off = measure_memory(length, "kd", None)
        on = measure_memory(length, "kd", args.chunk_size)
        first = first or {"off": off["peak_mb"], "on": on["peak_mb"]}
        print(
            f"  {length:6d} {sft_m['peak_mb']:8.0f} {off['peak_mb']:8.0f} {on['peak_mb']:8.0f} "
            f"{on['peak_mb'] / off['peak_mb']:7.3f} {off['peak_mb'] / first['off']:8.2f} "
            f"{on['peak_mb'] / first['on']:7.2f} {off['seconds']:8.2f} {on['seconds']:7.2f}"
        )


if __name__ == "__main__":
    main()
