"""Records -> padded tensors, with the teacher's top-k aligned to the student's logits.

Alignment: the teacher's top-k at response position j is its distribution of response
token j given prompt + response[:j]. A causal student predicts that token from input
position len(prompt) + j - 1 (its logits at position t are about token t + 1). So the
teacher targets are written at `len(prompt) + j - 1`, and `logits[:, t]` meets
`teacher_*[:, t]` without any further shift. `labels` follow the Hugging Face convention
instead (aligned with `input_ids`; the model / trainer shift them), -100 on prompt and padding.

Teacher token ids are used as they are: never decoded and re-tokenised. Everything is
vectorised over pyarrow's flat buffers; there is no per-token Python loop. The top-k is
read with `distill.codec.decode_topk`, so plain (schema 1) and packed (schema 2) records
collate to the same tensors (up to the packed codec's stated log-prob / tail rounding).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from datasets import Dataset

from distill.codec import decode_topk
from distill.schemas import PACKED_TOPK_COLUMNS, PLAIN_TOPK_COLUMNS
from distill.train.rows import take_rows

TEACHER_COLUMNS = PLAIN_TOPK_COLUMNS  # schema 1; `teacher_columns` picks per layout
TOKEN_COLUMNS = ["prompt_token_ids", "token_ids"]
IGNORE_INDEX = -100


def teacher_columns(names: Sequence[str]) -> list[str]:
    """The top-k columns to read from a table (or row) with these column names."""
    return PACKED_TOPK_COLUMNS if "topk_ids_packed" in names else PLAIN_TOPK_COLUMNS


def _as_table(rows: pa.Table | Sequence[Mapping[str, Any]], with_teacher: bool) -> pa.Table:
    names = rows.column_names if isinstance(rows, pa.Table) else (list(rows[0]) if rows else [])
    columns = TOKEN_COLUMNS + (teacher_columns(names) if with_teacher else [])
    if isinstance(rows, pa.Table):
        return rows.select(columns)
    return pa.Table.from_pylist([{c: row[c] for c in columns} for row in rows])


def _flat(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """A list column as (flat values, per-row lengths); respects slices of the table."""
    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    lengths = pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False)
    return arr.flatten(), lengths.astype(np.int64)


def _row_and_offset(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each flat element: which row it belongs to and its index inside that row."""
    rows = np.repeat(np.arange(len(lengths)), lengths)
    starts = np.cumsum(lengths) - lengths
    within = np.arange(int(lengths.sum())) - np.repeat(starts, lengths)
    return rows, within


def collate_rows(
    rows: pa.Table | Sequence[Mapping[str, Any]],
    *,
    with_teacher: bool = True,
    pad_token_id: int = 0,
) -> dict[str, torch.Tensor]:
    """Right-padded batch: input_ids, attention_mask, labels and, with `with_teacher`,
    teacher_ids / teacher_logprobs / teacher_topk_mask `[B, L, k]`, teacher_tail and
    target_mask `[B, L]`, aligned with the logits (see the module docstring).

    Top-k padding uses id 0 (a valid index for gather) with teacher_topk_mask False.
    """
    table = _as_table(rows, with_teacher)
    prompt_vals, prompt_len = _flat(table.column("prompt_token_ids"))
    resp_vals, resp_len = _flat(table.column("token_ids"))
    batch = table.num_rows
    total = prompt_len + resp_len
    width = max(int(total.max(initial=0)), 1)

    input_ids = np.full((batch, width), pad_token_id, dtype=np.int64)
    labels = np.full((batch, width), IGNORE_INDEX, dtype=np.int64)
    p_rows, p_pos = _row_and_offset(prompt_len)
    input_ids[p_rows, p_pos] = prompt_vals.to_numpy(zero_copy_only=False)
    r_rows, r_j = _row_and_offset(resp_len)
    r_pos = prompt_len[r_rows] + r_j
    resp_np = resp_vals.to_numpy(zero_copy_only=False)
    input_ids[r_rows, r_pos] = resp_np
    # A response token at input position 0 (empty prompt) has nothing to predict it from.
    predictable = r_pos > 0
    labels[r_rows[predictable], r_pos[predictable]] = resp_np[predictable]
    attention_mask = (np.arange(width)[None, :] < total[:, None]).astype(np.int64)

    out = {
        "input_ids": torch.from_numpy(input_ids),
        "attention_mask": torch.from_numpy(attention_mask),
        "labels": torch.from_numpy(labels),
    }
    if with_teacher:
        out.update(_teacher_targets(table, resp_len, r_pos, predictable, width))
    return out


def _teacher_targets(
    table: pa.Table,
    resp_len: np.ndarray,
    r_pos: np.ndarray,
    predictable: np.ndarray,
    width: int,
) -> dict[str, torch.Tensor]:
    topk = decode_topk(table)
    if not np.array_equal(topk.tokens_per_row, resp_len):
        bad = np.flatnonzero(topk.tokens_per_row != resp_len)
        raise ValueError(
            f"rows {bad[:5].tolist()}: topk_ids/tail_mass must have one entry per response token"
        )
    batch = table.num_rows
    k_len = topk.k_per_token
    k = max(int(k_len.max(initial=0)), 1)

    # Response token t (flat over the batch) lands at row tok_rows[t], position r_pos[t] - 1.
    tok_rows = np.repeat(np.arange(batch), resp_len)
    tok_pos = r_pos - 1
    teacher_ids = np.zeros((batch, width, k), dtype=np.int64)
    teacher_lps = np.zeros((batch, width, k), dtype=np.float32)
    topk_mask = np.zeros((batch, width, k), dtype=bool)
    teacher_tail = np.zeros((batch, width), dtype=np.float32)
    target_mask = np.zeros((batch, width), dtype=bool)

    tr, tp = tok_rows[predictable], tok_pos[predictable]
    uniform = topk.uniform_k
    if uniform is not None:  # every token has k entries: scatter whole [k] rows at once
        ids, lps, _ = topk.padded()
        teacher_ids[tr, tp, :uniform] = ids[predictable]
        teacher_lps[tr, tp, :uniform] = lps[predictable]
        topk_mask[tr, tp, :uniform] = True
    else:
        tok_of_entry = np.repeat(np.arange(k_len.size), k_len)
        slot = np.arange(topk.ids.size) - np.repeat(np.cumsum(k_len) - k_len, k_len)
        entry_ok = predictable[tok_of_entry]
        er, ep = tok_rows[tok_of_entry][entry_ok], tok_pos[tok_of_entry][entry_ok]
        es = slot[entry_ok]
        teacher_ids[er, ep, es] = topk.ids[entry_ok]
        teacher_lps[er, ep, es] = topk.logprobs[entry_ok]
        topk_mask[er, ep, es] = True
    teacher_tail[tr, tp] = topk.tail[predictable]
    target_mask[tr, tp] = True
    return {
        "teacher_ids": torch.from_numpy(teacher_ids),
        "teacher_logprobs": torch.from_numpy(teacher_lps),
        "teacher_topk_mask": torch.from_numpy(topk_mask),
        "teacher_tail": torch.from_numpy(teacher_tail),
        "target_mask": torch.from_numpy(target_mask),
    }


def shifted_labels(labels: torch.Tensor) -> torch.Tensor:
    """Labels aligned with the logits: position t holds the token at t + 1 (-100 at the end)."""
    pad = torch.full_like(labels[:, :1], IGNORE_INDEX)
    return torch.cat([labels[:, 1:], pad], dim=1)


class RecordCollator:
    """Trainer collator: the dataset yields `{"row_index": i}`; rows come from `table`.

    Keeping the records in Arrow (not in a `datasets.Dataset` of nested Python lists) is
    what lets `collate_rows` stay vectorised. `table` may be memory-mapped
    (`distill.train.rows`): `take_rows` copies only the batch's rows out of it.
    """

    def __init__(self, table: pa.Table, *, with_teacher: bool = True, pad_token_id: int = 0):
        teacher = teacher_columns(table.column_names) if with_teacher else []
        self.table = table.select(TOKEN_COLUMNS + teacher)
        self.with_teacher = with_teacher
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        indices = [int(e["row_index"]) for e in examples]
        return collate_rows(
            take_rows(self.table, indices),
            with_teacher=self.with_teacher,
            pad_token_id=self.pad_token_id,
        )


def sft_dataset(table: pa.Table) -> Dataset:
    """Pre-tokenised prompt + response ids with a completion mask, for TRL's SFTTrainer.

    The same ids the KD collator builds, so SFT sees exactly the sequences KD sees.
    """
    prompts = table.column("prompt_token_ids").to_pylist()
    responses = table.column("token_ids").to_pylist()
    return Dataset.from_dict(
        {
            "input_ids": [p + r for p, r in zip(prompts, responses, strict=True)],
            "completion_mask": [
                [0] * len(p) + [1] * len(r) for p, r in zip(prompts, responses, strict=True)
            ],
        }
    )
