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


def _best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def loader_rows(table: pa.Table, batch_size: int = 8, repeats: int = 3) -> list[dict]:
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
    for name, t in (("plain (schema 1)", table), ("packed (schema 2)", encode_table(table))):
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
