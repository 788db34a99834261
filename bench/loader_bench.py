"""Loader throughput: records -> padded training tensors, one thread, both layouts.

Times `RecordCollator` (what the Trainer calls) over shuffled batches of the whole table,
and `decode_topk` alone. A "position" is one response token with its top-k (k entries).
"""

from __future__ import annotations

import time

import numpy as np
import pyarrow as pa
import torch

from distill.codec import decode_topk, encode_table
from distill.train.collate import RecordCollator


def synthetic_table(
    rows: int = 128, prompt: int = 64, tokens: int = 256, k: int = 20, vocab: int = 49152
) -> pa.Table:
    """Plain (schema 1) columns the collator reads, with realistic response lengths: the
    demo's MMLU answers are ~10 tokens, which measures per-batch overhead, not decoding."""
    rng = np.random.default_rng(0)

    def lists(values: pa.Array | np.ndarray, width: int) -> pa.ListArray:
        count = len(values) // width
        offsets = pa.array(np.arange(0, count * width + 1, width, dtype=np.int32))
        return pa.ListArray.from_arrays(offsets, values)

    per_token_ids = lists(pa.array(rng.integers(0, vocab, rows * tokens * k, dtype=np.int32)), k)
    lps = -np.sort(rng.exponential(2.0, (rows * tokens, k)).astype(np.float32), axis=1) - 0.5
    per_token_lps = lists(pa.array(lps.ravel()), k)
    return pa.table(
        {
            "record_id": pa.array([f"r{i}" for i in range(rows)]),
            "prompt_token_ids": lists(
                pa.array(rng.integers(0, vocab, rows * prompt, dtype=np.int32)), prompt
            ),
            "token_ids": lists(
                pa.array(rng.integers(0, vocab, rows * tokens, dtype=np.int32)), tokens
            ),
            "topk_ids": lists(per_token_ids, tokens),
            "topk_logprobs": lists(per_token_lps, tokens),
            "tail_mass": lists(pa.array(np.full(rows * tokens, 0.05, dtype=np.float32)), tokens),
        }
    )


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def loader_rows(
    table: pa.Table, batch_size: int = 8, repeats: int = 3, vocab_size: int | None = None
) -> list[dict]:
    """Positions/s through the collator and through the decoder, plain vs packed."""
    torch.set_num_threads(1)
    positions = int(decode_topk(table).tokens_per_row.sum())
    order = np.random.default_rng(0).permutation(table.num_rows)
    batches = [
        [{"row_index": int(i)} for i in order[s : s + batch_size]]
        for s in range(0, len(order), batch_size)
    ]
    rows = []
    base = None
    for name, t in (
        ("plain (schema 1)", table),
        ("packed (schema 2)", encode_table(table, vocab_size=vocab_size)),
    ):
        collator = RecordCollator(t)

        def collate_all(collator=collator) -> None:
            for batch in batches:
                collator(batch)

        def decode_all(t=t) -> None:
            decode_topk(t).padded()

        seconds = _best_of(collate_all, repeats)
        decode_s = _best_of(decode_all, repeats)
        rate = positions / seconds
        base = base or rate
        rows.append(
            {
                "layout": name,
                "collate_positions_per_s": rate,
                "ratio": rate / base,
                "decode_positions_per_s": positions / decode_s,
                "batch_size": batch_size,
            }
        )
    return rows
