"""Held-out metrics and the deterministic held-out split shared by SFT and KD.

Both students are judged on the same rows with the same two numbers: the sparse
KL(teacher || student) at T = 1 (k + 1 buckets, as in training) and the NLL of the
teacher's sampled tokens, each averaged over response tokens.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from transformers import TrainerCallback

from distill.train.collate import collate_rows, shifted_labels
from distill.train.losses import TeacherTargets, sparse_kl_per_token
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
            kl = sparse_kl_per_token(logits, TeacherTargets.from_batch(batch).at(where))
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


def _unit_hash(key: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_heldout(
    table: pa.Table, fraction: float = 0.1, min_rows: int = 4, seed: int = 0
) -> tuple[pa.Table, pa.Table]:
    """(train, heldout) by hashing `prompt_id`: every sample of a prompt is on one side.

    Splitting by record would put the other samples of a held-out prompt in training, so
    the "held-out" score would partly measure prompts the student has seen. A prompt is
    held out when the hash of (seed, prompt_id) falls below `fraction`: the same prompts
    whatever the mode or row order, and adding data never moves a prompt across the split.
    If that holds out fewer than `min_rows` rows, whole prompts with the smallest hashes
    top it up, skipping any that would hold out more than half the rows. `fraction=0`
    holds nothing out.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    n = table.num_rows
    if fraction == 0.0 or n == 0:
        return table, table.slice(0, 0)
    if "prompt_id" not in table.column_names:
        raise ValueError("split_heldout needs a prompt_id column (read it with the records)")
    prompt_ids = table.column("prompt_id").to_pylist()
    sizes = Counter(prompt_ids)
    hashes = {p: _unit_hash(p, seed) for p in sizes}
    held_prompts = {p for p, h in hashes.items() if h < fraction}
    held_rows = sum(sizes[p] for p in held_prompts)
    want = min(max(min_rows, held_rows), n // 2)
    for prompt in sorted(hashes, key=lambda p: (hashes[p], p)):
        if held_rows >= want:
            break
        if prompt not in held_prompts and held_rows + sizes[prompt] <= n // 2:
            held_prompts.add(prompt)
            held_rows += sizes[prompt]
    held = np.array([p in held_prompts for p in prompt_ids], dtype=bool)
    order = np.arange(n)
    return table.take(order[~held]), table.take(order[held])


def split_summary(train: pa.Table, heldout: pa.Table) -> dict[str, Any]:
    """What `metrics.json` records so anyone can check the split: prompts, rows, tokens."""

    def tokens(t: pa.Table) -> int:
        return int(pc.sum(pc.list_value_length(t.column("token_ids"))).as_py() or 0)

    return {
        "heldout_prompt_ids": sorted(set(heldout.column("prompt_id").to_pylist())),
        "train_rows": train.num_rows,
        "heldout_rows": heldout.num_rows,
        "train_tokens": tokens(train),
        "heldout_tokens": tokens(heldout),
    }


HeldoutEval = Callable[[torch.nn.Module, pa.Table], dict]


class HeldoutCurve(TrainerCallback):
    """Evaluates the held-out rows every `every` steps so a report can plot a curve."""

    def __init__(self, heldout: pa.Table, every: int | None, evaluate: HeldoutEval):
        self.heldout, self.every, self.evaluate, self.points = heldout, every, evaluate, []

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and self.heldout.num_rows and state.global_step % self.every == 0:
            self.points.append({"step": state.global_step, **self.evaluate(model, self.heldout)})
