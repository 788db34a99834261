"""Held-out metrics and the deterministic held-out split shared by SFT and KD.

Both students are judged on the same rows with the same two numbers: the sparse
KL(teacher || student) at T = 1 (k + 1 buckets, as in training) and the NLL of the
teacher's sampled tokens, each averaged over response tokens.

The split (`split_rows`) reads only the prompt ids and response lengths and gives row
numbers, so the rows are never copied to make it; a cap on the held-out rows and tokens
keeps the evaluation's cost the same on a dataset of any size.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
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


HASH_BATCH = 65_536  # prompts hashed per batch: bounds the Python strings alive at once


@dataclass(frozen=True)
class HeldoutCap:
    """The bound on the held-out set, and how many prompts the fraction chose beyond it."""

    max_rows: int | None
    max_tokens: int | None
    prompts_over_cap: int  # chosen by the fraction, moved to training by the cap

    def as_dict(self) -> dict[str, int | None]:
        return {
            "max_rows": self.max_rows,
            "max_tokens": self.max_tokens,
            "prompts_over_cap": self.prompts_over_cap,
        }


@dataclass(frozen=True)
class RowSplit:
    """Row numbers on each side (int64, ascending) and the split's counts."""

    train_rows: np.ndarray
    heldout_rows: np.ndarray
    heldout_prompt_ids: list[str]
    train_tokens: int
    heldout_tokens: int
    cap: HeldoutCap

    def summary(self) -> dict[str, Any]:
        """`split_summary`'s fields, from the row numbers alone."""
        return {
            "heldout_prompt_ids": self.heldout_prompt_ids,
            "train_rows": int(self.train_rows.size),
            "heldout_rows": int(self.heldout_rows.size),
            "train_tokens": self.train_tokens,
            "heldout_tokens": self.heldout_tokens,
        }


def response_lengths(table: pa.Table) -> np.ndarray:
    """Response tokens per row, from the list offsets alone (the token ids are not read)."""
    if "token_ids" not in table.column_names:
        return np.zeros(table.num_rows, dtype=np.int64)
    lengths = pc.list_value_length(table.column("token_ids")).fill_null(0)
    return lengths.to_numpy().astype(np.int64)


def _hash_order(prompts: pa.Array, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(each prompt's unit hash, the prompts' order by (hash, prompt id))."""
    hashes = np.empty(len(prompts), dtype=np.float64)
    for start in range(0, len(prompts), HASH_BATCH):
        names = prompts.slice(start, HASH_BATCH).to_pylist()
        hashes[start : start + len(names)] = [_unit_hash(p, seed) for p in names]
    keys = pa.table({"hash": hashes, "prompt": prompts})
    order = pc.sort_indices(keys, sort_keys=[("hash", "ascending"), ("prompt", "ascending")])
    return hashes, order.to_numpy()


def _chosen(
    hashes: np.ndarray, order: np.ndarray, sizes: np.ndarray, fraction: float, min_rows: int
) -> np.ndarray:
    """The prompts (a mask) the fraction holds out, topped up to `min_rows` with whole
    prompts in hash order, never past half the rows."""
    half = int(sizes.sum()) // 2
    held = hashes < fraction
    held_rows = int(sizes[held].sum())
    want = min(max(min_rows, held_rows), half)
    for prompt in order:  # the fraction's prompts come first in hash order, then top-ups
        if held_rows >= want:
            break
        if not held[prompt] and held_rows + sizes[prompt] <= half:
            held[prompt] = True
            held_rows += int(sizes[prompt])
    return held


def _capped(
    chosen: np.ndarray,
    order: np.ndarray,
    sizes: np.ndarray,
    tokens: np.ndarray,
    max_rows: int | None,
    max_tokens: int | None,
) -> np.ndarray:
    """The chosen prompts taken in hash order, each one that still fits the cap (one that
    would pass it is skipped and the next tried, so a single long prompt cannot empty the
    set). If none fits, the first chosen prompt is held out alone: the held-out set is
    never empty while prompts were chosen, and one prompt is still a bounded cost."""
    in_order = order[chosen[order]]
    held = np.zeros_like(chosen)
    room_rows = np.inf if max_rows is None else max_rows
    room_tokens = np.inf if max_tokens is None else max_tokens
    # A loop, not a cumulative sum: skipping a prompt that does not fit makes the choice
    # depend on what was taken before it. It runs over the chosen prompts only.
    for prompt in in_order.tolist():
        if sizes[prompt] <= room_rows and tokens[prompt] <= room_tokens:
            held[prompt] = True
            room_rows -= sizes[prompt]
            room_tokens -= tokens[prompt]
    if in_order.size and not held.any():
        held[in_order[0]] = True
    return held


def split_rows(
    prompt_ids: pa.Array | pa.ChunkedArray,
    response_tokens: np.ndarray,
    *,
    fraction: float = 0.1,
    min_rows: int = 4,
    seed: int = 0,
    max_rows: int | None = None,
    max_tokens: int | None = None,
) -> RowSplit:
    """`split_heldout` as row numbers, from the `prompt_id` column and each row's response
    token count alone: the rows themselves are never read.

    The fraction (and the `min_rows` top-up) choose prompts as `split_heldout` says; the cap
    then takes the chosen prompts in hash order, each one that keeps the held-out rows
    within `max_rows` and their response tokens within `max_tokens` (None: no bound; a
    prompt that would pass the cap is skipped, and if no prompt fits, the first is held out
    alone). So the
    held-out set is whole prompts below a hash threshold: deterministic, and its cost is
    bounded whatever the dataset's size. The chosen prompts the cap leaves out train (and
    `cap.prompts_over_cap` counts them): no held-out prompt is ever trained on, a run used
    every row whose prompt it did not hold out (what an audit of the run assumes), and a
    large dataset does not give up the fraction's share of its rows to a bounded evaluation.
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if isinstance(prompt_ids, pa.Array):
        prompt_ids = pa.chunked_array([prompt_ids])
    if prompt_ids.null_count:
        raise ValueError(f"prompt_id: {prompt_ids.null_count} rows have none")
    tokens = np.asarray(response_tokens, dtype=np.int64)
    prompts = pc.unique(prompt_ids)
    codes = pc.index_in(prompt_ids, value_set=prompts).to_numpy().astype(np.int64)
    if tokens.shape != codes.shape:
        raise ValueError(f"{codes.size} prompt ids but {tokens.size} token counts")
    held = chosen = np.zeros(len(prompts), dtype=bool)
    if fraction > 0.0 and codes.size:
        sizes = np.bincount(codes, minlength=len(prompts))
        prompt_tokens = np.bincount(codes, weights=tokens, minlength=len(prompts))
        hashes, order = _hash_order(prompts, seed)
        chosen = _chosen(hashes, order, sizes, fraction, min_rows)
        held = _capped(chosen, order, sizes, prompt_tokens, max_rows, max_tokens)
    held_row = held[codes]
    heldout_tokens = int(tokens[held_row].sum())
    return RowSplit(
        train_rows=np.flatnonzero(~held_row),
        heldout_rows=np.flatnonzero(held_row),
        heldout_prompt_ids=sorted(prompts.filter(pa.array(held)).to_pylist()),
        train_tokens=int(tokens.sum()) - heldout_tokens,
        heldout_tokens=heldout_tokens,
        cap=HeldoutCap(max_rows, max_tokens, int(chosen.sum() - held.sum())),
    )


def split_heldout(
    table: pa.Table,
    fraction: float = 0.1,
    min_rows: int = 4,
    seed: int = 0,
    max_rows: int | None = None,
    max_tokens: int | None = None,
) -> tuple[pa.Table, pa.Table]:
    """(train, heldout) by hashing `prompt_id`: every sample of a prompt is on one side.

    Splitting by record would put the other samples of a held-out prompt in training, so
    the "held-out" score would partly measure prompts the student has seen. A prompt is
    held out when the hash of (seed, prompt_id) falls below `fraction`: the same prompts
    whatever the mode or row order, and, uncapped, adding data never moves a prompt
    across the split (with a cap, new prompts with smaller hashes can take the place of
    earlier held-out ones, which then train: each run records its own held-out ids). If
    that holds out fewer than `min_rows` rows, whole prompts with the smallest hashes
    top it up, skipping any that would hold out more than half the rows. `fraction=0`
    holds nothing out. `max_rows` / `max_tokens` bound the held-out set (`split_rows`).
    """
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction must be in [0, 1), got {fraction}")
    if fraction == 0.0 or table.num_rows == 0:
        return table, table.slice(0, 0)
    if "prompt_id" not in table.column_names:
        raise ValueError("split_heldout needs a prompt_id column (read it with the records)")
    split = split_rows(
        table.column("prompt_id"), response_lengths(table), fraction=fraction,
        min_rows=min_rows, seed=seed, max_rows=max_rows, max_tokens=max_tokens,
    )  # fmt: skip
    return table.take(pa.array(split.train_rows)), table.take(pa.array(split.heldout_rows))


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
