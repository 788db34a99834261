"""Rows for axolotl's knowledge-distillation plugin: pre-tokenized, with offline top-k targets.

The contract, read from axolotl 0.19.0 (the wheel on PyPI):

- `axolotl/utils/data/wrappers.py` (`_is_dataset_already_tokenized`): a dataset with
  `input_ids`, `attention_mask` and `labels` is used as it is, no prompt strategy runs.
- `axolotl/integrations/kd/trainer.py` (`AxolotlKDTrainer`) keeps `target_logprobs`,
  `target_token_ids` and `target_mask` through the Trainer's column pruning and passes them to
  `kernels/liger.py` (`LigerFusedLinearKLTopKLogprobLoss`). There the student's hidden state
  at position p meets `target_*[p]` unshifted, while the hard labels are shifted
  (`true_labels[:, 1:]`): **position p holds the teacher's distribution over the token at
  p + 1**, the one the student predicts at p.
- `collator.py` (`DataCollatorForKD`) pads each position to the batch's largest k with id 0,
  log-prob -1e9 and mask 0, and the sequence with the same; `target_*` are `[L][k]` lists.
- The KD loss takes `exp(target_logprobs)` as the teacher's probabilities over the k ids and
  sums the forward KL over them: they must already sum to 1. axolotl's own loader
  (`chat_template.py`, `ChatTemplateStrategyWithKD.transform_logprobs`) renormalises each
  position's top-k and rescales it from the generation temperature to `kd_temperature`; the
  positions before its targets get ids `range(k)`, log-prob -inf and mask 0.

What distill writes, per kept row, with P = len(prompt_token_ids), n = len(token_ids):

- `input_ids` = prompt_token_ids + token_ids (the teacher's own tokens: nothing is
  re-tokenized, so the targets cannot drift from the ids they describe);
- `attention_mask` = L ones (L = P + n); `labels` = P times -100, then token_ids;
- `target_token_ids[p]`, `target_logprobs[p]` for p = P - 1 … P + n - 2: the stored top-k
  of response token j = p - P + 1 (the distribution of `input_ids[p + 1]`), log-probs
  renormalised over the k entries at temperature 1 (raw `log_softmax` minus the log of the
  top-k's mass; the tail mass is what the renormalisation drops); `target_mask[p]` = 1 for
  each real entry;
- every other position (the prompt, and the last token, after which nothing was scored) and
  every entry past a position's k: id = its slot index, log-prob -1e9 (finite, so JSON holds
  it; masked entries never reach the loss), mask 0. A row's positions all have the row's
  largest k.
- `record_id`, for tracing a row back (`distill audit`); the Trainer drops it before the
  collator, as it drops every column the model does not take.

`tests/export/test_axolotl_kd.py` checks every position against this contract, and, where
axolotl imports (0.19.0 installed with `--no-deps` beside this project's packages, plus
`addict`, `liger-kernel` and a few small imports; no CUDA needed), runs axolotl's own
pre-tokenized check, `DataCollatorForKD` and the liger KD loss on an export.

Use: `datasets: [{path: out.parquet, ds_type: parquet}]` with no `type`, `kd_trainer: true`,
and `kd_temperature: 1.0` (the targets are at T = 1). The student must share the teacher's
tokenizer: the ids are the teacher's.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.codec import decode_topk

PAD_LOGPROB = -1e9  # DataCollatorForKD's padding value; masked, never used by the loss
IGNORE_INDEX = -100

AXOLOTL_KD_SCHEMA = pa.schema(
    [
        pa.field("input_ids", pa.list_(pa.int32())),
        pa.field("attention_mask", pa.list_(pa.int8())),
        pa.field("labels", pa.list_(pa.int32())),
        pa.field("target_token_ids", pa.list_(pa.list_(pa.int32()))),
        pa.field("target_logprobs", pa.list_(pa.list_(pa.float32()))),
        pa.field("target_mask", pa.list_(pa.list_(pa.int8()))),
        pa.field("record_id", pa.string()),
    ]
)


def _lengths(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    return pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def renormalised(logprobs: np.ndarray, k_per_token: np.ndarray) -> np.ndarray:
    """Each token's top-k log-probs minus their log-sum-exp: a distribution over the k ids."""
    out = np.empty(logprobs.size, np.float32)
    has = k_per_token > 0
    if logprobs.size:
        starts = (np.cumsum(k_per_token) - k_per_token)[has]
        values = logprobs.astype(np.float64)
        peak = np.repeat(np.maximum.reduceat(values, starts), k_per_token[has])
        mass = np.add.reduceat(np.exp(values - peak), starts)
        out[:] = values - peak - np.repeat(np.log(mass), k_per_token[has])
    return out


def _nested(values: np.ndarray, width: np.ndarray, positions: np.ndarray, typ: pa.DataType):
    inner = np.concatenate([[0], np.cumsum(np.repeat(width, positions))]).astype(np.int32)
    outer = np.concatenate([[0], np.cumsum(positions)]).astype(np.int32)
    inner_list = pa.ListArray.from_arrays(pa.array(inner), pa.array(values, typ))
    return pa.ListArray.from_arrays(pa.array(outer), inner_list)


def _flat_list(values: np.ndarray, lengths: np.ndarray, typ: pa.DataType) -> pa.Array:
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, typ))


def axolotl_kd_rows(batch: pa.Table) -> pa.Table:
    """`batch` (records, either codec) as axolotl KD rows (`AXOLOTL_KD_SCHEMA`), vectorised."""
    topk = decode_topk(batch)
    prompt = batch.column("prompt_token_ids").combine_chunks()
    response = batch.column("token_ids").combine_chunks()
    p_len, n_len = _lengths(prompt), _lengths(response)
    if not np.array_equal(n_len, topk.tokens_per_row):
        raise ValueError("token_ids and the top-k differ in length in some row")
    n_rows, seq_len = len(p_len), p_len + n_len
    row_of_token = np.repeat(np.arange(n_rows), n_len)
    width = np.zeros(n_rows, np.int64)  # each row's largest k
    np.maximum.at(width, row_of_token, topk.k_per_token)
    cells = seq_len * width
    row_start = np.concatenate([[0], np.cumsum(cells)])[:-1]
    total = int(cells.sum())
    slot_pad = np.arange(total) - np.repeat(row_start, cells)
    ids = (slot_pad % np.repeat(np.maximum(width, 1), cells)).astype(np.int32)
    lps = np.full(total, PAD_LOGPROB, np.float32)
    mask = np.zeros(total, np.int8)
    # Entry s of response token j of row r goes to position P_r - 1 + j, slot s.
    token_start = np.concatenate([[0], np.cumsum(n_len)])[:-1]
    j = np.arange(n_len.sum()) - np.repeat(token_start, n_len)
    position = p_len[row_of_token] - 1 + j
    if position.size and position.min() < 0:
        raise ValueError("a row with an empty prompt: no position predicts its first token")
    cell_of_token = row_start[row_of_token] + position * width[row_of_token]
    entry_start = np.cumsum(topk.k_per_token) - topk.k_per_token
    slot = np.arange(topk.ids.size) - np.repeat(entry_start, topk.k_per_token)
    target = np.repeat(cell_of_token, topk.k_per_token) + slot
    ids[target] = topk.ids
    lps[target] = renormalised(topk.logprobs, topk.k_per_token)
    mask[target] = 1
    prompt_ids = prompt.flatten().to_numpy(zero_copy_only=False)
    response_ids = response.flatten().to_numpy(zero_copy_only=False)
    row_tokens = np.concatenate([[0], np.cumsum(seq_len)])[:-1]
    is_response = np.arange(seq_len.sum()) - np.repeat(row_tokens, seq_len) >= np.repeat(
        p_len, seq_len
    )
    input_ids = np.empty(int(seq_len.sum()), np.int32)
    input_ids[~is_response], input_ids[is_response] = prompt_ids, response_ids
    labels = np.where(is_response, input_ids, IGNORE_INDEX).astype(np.int32)
    columns = {
        "input_ids": _flat_list(input_ids, seq_len, pa.int32()),
        "attention_mask": _flat_list(np.ones(input_ids.size, np.int8), seq_len, pa.int8()),
        "labels": _flat_list(labels, seq_len, pa.int32()),
        "target_token_ids": _nested(ids, width, seq_len, pa.int32()),
        "target_logprobs": _nested(lps, width, seq_len, pa.float32()),
        "target_mask": _nested(mask, width, seq_len, pa.int8()),
        "record_id": batch.column("record_id").combine_chunks(),
    }
    return pa.Table.from_pydict(columns, schema=AXOLOTL_KD_SCHEMA)
