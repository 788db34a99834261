"""`python -m bench`: every figure the toolkit has, each as a ratio to a baseline measured
in the same run.

    python -m bench [--k20 DIR_OR_PARQUET] [--k64 DIR] [--gen] [--dedup]

  codec   bytes/token of the top-k columns and mean KL(exact || decoded) for k = 8, 20, 64,
          against int32+float32 (schema 1) and int32+float16, on real teacher outputs
          (k = 8 is the exact first 8 of the k = 20 set; see codec_bench.truncate_k)
  loader  top-k positions/s into padded tensors, one thread: packed / plain
  kd/sft  KD step time / SFT step time on the same synthetic batch (distill.train.losses)
  --gen   also runs bench/gen_capture.py (capture on / off; ~1 min)
  --dedup also runs bench/near_dedup.py --docs 20000 (vs datasketch per shingle, rensa)
"""

from __future__ import annotations

import argparse
import platform
import runpy
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import torch

from bench.codec_bench import codec_rows, truncate_k
from bench.loader_bench import loader_rows, synthetic_table
from distill.store import read_table
from distill.train.losses import TeacherTargets, distill_loss, hard_label_loss

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "smollm2_mmlu.parquet"


def kd_vs_sft_step(
    vocab: int = 49152, hidden: int = 64, batch: int = 8, length: int = 128, k: int = 20
) -> dict:
    """Median forward + backward time of a tiny LM on one batch: KD loss vs cross-entropy."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Embedding(vocab, hidden), torch.nn.Linear(hidden, vocab))
    tokens = torch.randint(0, vocab, (batch, length))
    labels = torch.randint(0, vocab, (batch, length))
    teacher = torch.randn(batch, length, vocab).topk(k, dim=-1)
    lps = torch.log_softmax(teacher.values, -1) - 0.1
    tail = torch.full((batch, length), 1 - float(torch.exp(torch.tensor(-0.1))))

    def sft() -> None:
        hard_label_loss(model(tokens), labels).backward()

    def kd() -> None:
        targets = TeacherTargets(teacher.indices, lps, tail)
        distill_loss(model(tokens), targets, labels).loss.backward()

    times: dict[str, list[float]] = {"sft": [], "kd": []}
    for _ in range(5):
        for name, fn in (("sft", sft), ("kd", kd)):
            model.zero_grad()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    med = {n: sorted(v)[len(v) // 2] for n, v in times.items()}
    return {"sft_s": med["sft"], "kd_s": med["kd"], "ratio": med["kd"] / med["sft"]}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument(
        "--k20",
        type=Path,
        default=FIXTURE,
        help="a k=20 dataset dir (e.g. distill-demo/gen) or Parquet file; default: the "
        "300 real SmolLM2 rows in tests/fixtures",
    )
    parser.add_argument("--k64", type=Path, default=None, help="a k=64 dataset dir, if any")
    parser.add_argument("--gen", action="store_true", help="also run bench/gen_capture.py")
    parser.add_argument(
        "--dedup", action="store_true", help="also run bench/near_dedup.py on 20k documents"
    )
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads")

    sets = {}
    t20 = read_table(args.k20) if args.k20.is_dir() else pq.read_table(args.k20)
    sets["8"], sets["20"] = truncate_k(t20, 8), t20
    if args.k64 is not None:
        sets["64"] = read_table(args.k64)
    print("\n[codec] top-k bytes/token (zstd Parquet), ratio to int32+float32, mean KL nats")
    print(f"{'k':>3s} {'layout':28s} {'B/token':>9s} {'ratio':>7s} {'mean KL':>9s}")
    for k, table in sets.items():
        for row in codec_rows(table):
            print(
                f"{k:>3s} {row['codec']:28s} {row['bytes_per_token']:9.2f} "
                f"{row['ratio']:7.4f} {row['kl']:9.2e}"
            )
    print("\n[loader] positions/s into padded tensors, 1 thread, ratio packed / plain")
    cases = {"real (~11 tok/row)": sets["20"], "synthetic 256 tok/row": synthetic_table()}
    for label, table in cases.items():
        for batch_size in (8, 64):
            for row in loader_rows(table, batch_size=batch_size, vocab_size=49152):
                print(
                    f"{label:22s} batch {batch_size:3d} {row['layout']:18s} collate "
                    f"{row['collate_positions_per_s']:12,.0f}/s  ratio {row['ratio']:.4f}  "
                    f"decode only {row['decode_positions_per_s']:14,.0f}/s"
                )
    step = kd_vs_sft_step()
    print(
        f"\n[kd/sft] step time, V=49152 B=8 L=128 k=20: sft {step['sft_s'] * 1e3:.1f} ms, "
        f"kd {step['kd_s'] * 1e3:.1f} ms, ratio kd/sft {step['ratio']:.4f}"
    )
    extra = [("gen", "gen_capture.py", [], "capture overhead")]
    extra.append(("dedup", "near_dedup.py", ["--docs", "20000"], "near-dup throughput"))
    for flag, script, script_args, title in extra:
        if getattr(args, flag):
            print(f"\n[{flag}] {title} (bench/{script})")
            sys.argv = [script, *script_args]
            runpy.run_path(str(Path(__file__).with_name(script)), run_name="__main__")


if __name__ == "__main__":
    main()
