"""The transformers teacher on a GPU: tokens/s with top-k capture against the same loop
without it, and against transformers' generate() with and without its logits.

    python -m bench.gen_gpu [--vocab 128256] [--hidden 2048] [--layers 16] [--batch 32]

A random 1B-class Llama (Llama-3.2-1B's shape) in bf16, so nothing is downloaded; greedy
decoding of exactly `--max-new-tokens` per row (no stop token), prompts of mixed length,
left-padded. Baselines, same prompts and batch, one process, interleaved repeats:
- distill's loop with capture off (the ratio's denominator);
- `generate()` with no log-probs at all (what a text-only script runs);
- `generate(output_logits=True)` then top-k over the kept [steps, B, V] logits (what a
  hand-rolled capture script runs; it holds every step's full-vocabulary logits).
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import torch
from transformers import LlamaConfig, LlamaForCausalLM

from distill.schemas import SamplingParams
from distill.teachers.hf_teacher import HFTeacher, generate_batch


def random_teacher(args: argparse.Namespace) -> HFTeacher:
    config = LlamaConfig(
        vocab_size=args.vocab, hidden_size=args.hidden, intermediate_size=4 * args.hidden,
        num_hidden_layers=args.layers, num_attention_heads=args.hidden // 64,
        num_key_value_heads=8, max_position_embeddings=4096, pad_token_id=0,
    )  # fmt: skip
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16).eval()
    # stop id -1: no row ever stops early, so every variant decodes the same token count
    return HFTeacher(model, SimpleNamespace(pad_token_id=0), "random-1b", "0" * 64, frozenset({-1}))


def prompts(args: argparse.Namespace) -> list[list[int]]:
    gen = torch.Generator().manual_seed(1)
    lengths = torch.randint(args.prompt_len // 4, args.prompt_len + 1, (args.batch,), generator=gen)
    return [torch.randint(2, args.vocab, (int(n),), generator=gen).tolist() for n in lengths]


def run_generate(teacher: HFTeacher, batch: list[list[int]], new: int, k: int | None) -> None:
    width = max(map(len, batch))
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, prompt in enumerate(batch):
        ids[row, width - len(prompt) :] = torch.tensor(prompt)
        mask[row, width - len(prompt) :] = 1
    out = teacher.model.generate(
        input_ids=ids.cuda(), attention_mask=mask.cuda(), max_new_tokens=new,
        min_new_tokens=new, do_sample=False, pad_token_id=0,
        output_logits=k is not None, return_dict_in_generate=True,
    )  # fmt: skip
    if k is not None:
        logits = torch.stack(out.logits)  # [steps, B, V]
        top = torch.log_softmax(logits.float(), -1).topk(k, -1)
        top.indices.tolist(), top.values.tolist()
    torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--hidden", type=int, default=2048)
    parser.add_argument("--layers", type=int, default=16)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--prompt-len", type=int, default=256)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--top-k", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    teacher, batch = random_teacher(args), prompts(args)
    sampling = SamplingParams(temperature=0.0, max_new_tokens=args.max_new_tokens)
    seeds = list(range(len(batch)))
    new, k = args.max_new_tokens, args.top_k
    variants = {
        "distill loop, capture off": lambda: generate_batch(
            teacher, batch, sampling, k, seeds, capture=False
        ),
        f"distill loop, top-{k} capture": lambda: generate_batch(
            teacher, batch, sampling, k, seeds
        ),
        "generate(), no log-probs": lambda: run_generate(teacher, batch, new, None),
        f"generate(output_logits) + top-{k}": lambda: run_generate(teacher, batch, new, k),
    }
    for fn in variants.values():  # warm-up: kernel selection, allocator
        fn()
    times: dict[str, list[float]] = {name: [] for name in variants}
    peaks: dict[str, float] = {}
    for _ in range(args.repeats):
        for name, fn in variants.items():
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            start = time.perf_counter()
            fn()
            torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
            peaks[name] = torch.cuda.max_memory_allocated() / 2**30
    tokens = len(batch) * new
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    print(
        f"random Llama V = {args.vocab}, H = {args.hidden}, {args.layers} layers, bf16; "
        f"{len(batch)} prompts of {args.prompt_len // 4}-{args.prompt_len} tokens, "
        f"{new} new tokens each, greedy, median of {args.repeats}"
    )
    base = sorted(times["distill loop, capture off"])[args.repeats // 2]
    for name, values in times.items():
        seconds = sorted(values)[args.repeats // 2]
        print(
            f"  {name:36s} {tokens / seconds:9.0f} tok/s  ratio {base / seconds:5.3f}  "
            f"peak {peaks[name]:5.1f} GiB"
        )


if __name__ == "__main__":
    main()
