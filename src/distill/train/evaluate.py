"""Held-out metrics and the deterministic held-out split shared by SFT and KD.

Both students are judged on the same rows with the same two numbers: the sparse
KL(teacher || student) at T = 1 (k + 1 buckets, as in training) and the NLL of the
teacher's sampled tokens, each averaged over response tokens.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import torch

from distill.train.collate import collate_rows, shifted_labels
from distill.train.losses import sparse_kl_per_token
from distill.train.student import logits_at


@torch.no_grad()
def heldout_metrics(model: torch.nn.Module, table: pa.Table, batch_size: int = 8) -> dict:
    """`{"kl", "nll", "tokens"}` over every response token of `table` (batched, no grad).

    The model's train/eval mode is restored afterwards, so this can run from a callback.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    kl_sum = nll_sum = 0.0
    tokens = 0
    try:
        for start in range(0, table.num_rows, batch_size):
            batch = collate_rows(table.slice(start, batch_size), with_teacher=True)
            batch = {k: v.to(device) for k, v in batch.items()}
            where = batch["target_mask"]
            logits = logits_at(model, batch["input_ids"], batch["attention_mask"], where).float()
            kl = sparse_kl_per_token(
                logits,
                batch["teacher_ids"][where],
                batch["teacher_logprobs"][where],
                batch["teacher_tail"][where],
                batch["teacher_topk_mask"][where],
            )
            # The token the teacher sampled, aligned with the logits (position t -> token t + 1).
            targets = shifted_labels(batch["labels"])[where]
            log_q = torch.log_softmax(logits, dim=-1)
            nll = -log_q.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            kl_sum += float(kl.sum())
            nll_sum += float(nll.sum())
            tokens += int(where.sum())
    finally:
        model.train(was_training)
    denom = max(tokens, 1)
    return {"kl": kl_sum / denom, "nll": nll_sum / denom, "tokens": tokens}


def _unit_hash(record_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_heldout(
    table: pa.Table, fraction: float = 0.1, min_rows: int = 4, seed: int = 0
) -> tuple[pa.Table, pa.Table]:
    """(train, heldout) by hashing `record_id`: the same rows whatever the mode or row order.

    A row is held out when its hash falls below `fraction`, so adding data never moves an
    existing row across the split. If that leaves fewer than `min_rows`, the rows with the
    smallest hashes top it up; at most half the table is ever held out. `fraction=0`
    holds nothing out.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    n = table.num_rows
    if fraction == 0.0 or n == 0:
        return table, table.slice(0, 0)
    ids = table.column("record_id").to_pylist()
    hashes = np.array([_unit_hash(r, seed) for r in ids])
    held = hashes < fraction
    want = min(max(min_rows, int(held.sum())), n // 2)
    if held.sum() < want:
        held[np.argsort(hashes, kind="stable")[:want]] = True
    order = np.arange(n)
    return table.take(order[~held]), table.take(order[held])
