"""The packed top-k codec (schema version 2) and one decoder for both layouts.

Per row (one record with n response tokens, each with the same k), the packed layout holds

  topk_k              uint16   k
  topk_id_bits        uint8    b = ceil(log2 vocab_size)
  topk_ids_packed     binary   n * k ids, token-major, b bits each (`bitpack`), ceil(n*k*b/8) B
  topk_logprob_codes  binary   n * k bytes: 8-bit codes of (token best - log-prob) over 20 nats,
                               stored as differences along k mod 256 (`quantize`)
  topk_ref_logprob    list<float32>  n: each token's best log-prob, exact
  tail_mass           list<float16>  n: rounded up

Ids are exact; log-probs are within `LOGPROB_BOUND` (0.0392 nats) of the original for every
entry within 20 nats of the token's best; see `distill.codec.quantize` for the bound.

`decode_topk(table)` reads either layout into flat NumPy arrays without a per-token loop;
the collator scatters those into padded tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.codec import bitpack
from distill.codec.quantize import (
    delta_codes,
    dequantize_logprobs,
    quantize_logprobs,
    tail_to_float16,
    token_max,
    undelta_codes,
)
from distill.schemas.arrow import (
    PACKED_TOPK_COLUMNS,
    PLAIN_TOPK_COLUMNS,
    codec_of,
    schema_for,
)


@dataclass(frozen=True)
class TopK:
    """A batch's top-k, flat: entry e belongs to token `repeat(arange(T), k_per_token)[e]`,
    token t to row `repeat(arange(R), tokens_per_row)[t]`."""

    ids: np.ndarray  # [E] int64
    logprobs: np.ndarray  # [E] float32
    k_per_token: np.ndarray  # [T] int64
    tail: np.ndarray  # [T] float32
    tokens_per_row: np.ndarray  # [R] int64

    @property
    def uniform_k(self) -> int | None:
        """The k every token has, or None when tokens differ (or there are none)."""
        if self.k_per_token.size == 0:
            return None
        k = int(self.k_per_token[0])
        return k if bool(np.all(self.k_per_token == k)) else None

    def padded(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids, logprobs, mask), each `[T, max k]`; padding is id 0, log-prob 0, mask False."""
        n_tok = self.k_per_token.size
        width = int(self.k_per_token.max(initial=0))
        k = self.uniform_k
        if k is not None:
            return (
                self.ids.reshape(n_tok, k),
                self.logprobs.reshape(n_tok, k),
                np.ones((n_tok, k), dtype=bool),
            )
        tok = np.repeat(np.arange(n_tok), self.k_per_token)
        slot = np.arange(self.ids.size) - np.repeat(
            np.cumsum(self.k_per_token) - self.k_per_token, self.k_per_token
        )
        ids = np.zeros((n_tok, width), np.int64)
        lps = np.zeros((n_tok, width), np.float32)
        mask = np.zeros((n_tok, width), bool)
        ids[tok, slot], lps[tok, slot], mask[tok, slot] = self.ids, self.logprobs, True
        return ids, lps, mask


def _combined(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    return column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column


def _list_lengths(arr: pa.Array) -> np.ndarray:
    return pc.list_value_length(arr).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)


def _flat_values(arr: pa.Array) -> np.ndarray:
    return arr.flatten().to_numpy(zero_copy_only=False)


def _binary_parts(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(value bytes, offsets [n + 1]) of a binary array, respecting slices."""
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, np.int32)[arr.offset : arr.offset + len(arr) + 1]
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    return data, offsets.astype(np.int64)


def _check_same_length(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if not np.array_equal(a, b):
        bad = np.flatnonzero(a != b)[:5].tolist()
        raise ValueError(f"rows {bad}: {what} must have one entry per response token")


def decode_topk(table: pa.Table) -> TopK:
    """The top-k of every row of `table`, plain (v1) or packed (v2) columns, as flat arrays."""
    if codec_of(table) == "packed":
        return _decode_packed(table)
    return _decode_plain(table)


def _decode_plain(table: pa.Table) -> TopK:
    ids_outer = _combined(table.column("topk_ids"))
    lps_outer = _combined(table.column("topk_logprobs"))
    tail = _combined(table.column("tail_mass"))
    tokens_per_row = _list_lengths(ids_outer)
    _check_same_length(tokens_per_row, _list_lengths(tail), "topk_ids/tail_mass")
    ids_inner, lps_inner = ids_outer.flatten(), lps_outer.flatten()
    k_per_token = _list_lengths(ids_inner)
    if not np.array_equal(k_per_token, _list_lengths(lps_inner)):
        raise ValueError("topk_ids and topk_logprobs differ in length at some position")
    return TopK(
        ids=_flat_values(ids_inner).astype(np.int64, copy=False),
        logprobs=_flat_values(lps_inner).astype(np.float32, copy=False),
        k_per_token=k_per_token,
        tail=_flat_values(tail).astype(np.float32, copy=False),
        tokens_per_row=tokens_per_row,
    )


def _decode_packed(table: pa.Table) -> TopK:
    k_row = _combined(table.column("topk_k")).to_numpy(zero_copy_only=False).astype(np.int64)
    bits_row = _combined(table.column("topk_id_bits")).to_numpy(zero_copy_only=False)
    ref = _combined(table.column("topk_ref_logprob"))
    tail = _combined(table.column("tail_mass"))
    tokens_per_row = _list_lengths(ref)
    _check_same_length(tokens_per_row, _list_lengths(tail), "topk_ref_logprob/tail_mass")
    per_row = tokens_per_row * k_row
    id_data, id_offsets = _binary_parts(_combined(table.column("topk_ids_packed")))
    ids = bitpack.unpack(id_data, id_offsets, per_row, bits_row.astype(np.int64))
    code_data, code_offsets = _binary_parts(_combined(table.column("topk_logprob_codes")))
    if not np.array_equal(np.diff(code_offsets), per_row):
        raise ValueError("topk_logprob_codes: a row's byte count is not tokens * k")
    k_per_token = np.repeat(k_row, tokens_per_row)
    deltas = code_data[code_offsets[0] : code_offsets[-1]]  # rows are contiguous
    codes = undelta_codes(deltas, k_per_token)
    ref_tok = _flat_values(ref).astype(np.float32, copy=False)
    return TopK(
        ids=ids,
        logprobs=dequantize_logprobs(codes, np.repeat(ref_tok, k_per_token)),
        k_per_token=k_per_token,
        tail=_flat_values(tail).astype(np.float32),
        tokens_per_row=tokens_per_row,
    )


def encode_topk(topk: TopK, id_bits: np.ndarray | int) -> dict[str, pa.Array]:
    """The packed columns (name -> array, one entry per row) of a flat `TopK`.

    Every token of a row must have the same k; ids must fit `id_bits` (per row or one int).
    """
    n_rows = topk.tokens_per_row.size
    k_row = np.zeros(n_rows, np.int64)
    has = topk.tokens_per_row > 0
    first_tok = (np.cumsum(topk.tokens_per_row) - topk.tokens_per_row)[has]
    k_row[has] = topk.k_per_token[first_tok]
    differs = topk.k_per_token != np.repeat(k_row, topk.tokens_per_row)
    if differs.any():
        bad = np.unique(np.repeat(np.arange(n_rows), topk.tokens_per_row)[differs])[:5]
        raise ValueError(f"rows {bad.tolist()}: the packed codec needs one k for every token")
    if k_row.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError("k above 65535 does not fit the packed codec")
    bits_row = np.broadcast_to(np.asarray(id_bits, np.int64), (n_rows,))
    per_row = topk.tokens_per_row * k_row
    if topk.ids.size and topk.ids.min() < 0:
        raise ValueError("top-k ids must be non-negative")
    id_blob, id_offsets = bitpack.pack(topk.ids, per_row, bits_row)
    ref = token_max(topk.logprobs, topk.k_per_token)
    codes = quantize_logprobs(topk.logprobs, np.repeat(ref, topk.k_per_token))
    deltas = delta_codes(codes, topk.k_per_token)
    row_offsets = np.concatenate([[0], np.cumsum(topk.tokens_per_row)]).astype(np.int32)
    return {
        "topk_k": pa.array(k_row.astype(np.uint16), pa.uint16()),
        "topk_id_bits": pa.array(bits_row.astype(np.uint8), pa.uint8()),
        "topk_ids_packed": _binary_array(id_blob, id_offsets),
        "topk_logprob_codes": _binary_array(deltas.tobytes(), np.cumsum(np.r_[0, per_row])),
        "topk_ref_logprob": pa.ListArray.from_arrays(pa.array(row_offsets), pa.array(ref)),
        "tail_mass": pa.ListArray.from_arrays(
            pa.array(row_offsets), pa.array(tail_to_float16(topk.tail), pa.float16())
        ),
    }


def _binary_array(blob: bytes, offsets: np.ndarray) -> pa.Array:
    if int(offsets[-1]) >= 2**31:
        raise ValueError("more than 2 GiB of packed top-k in one table; write smaller shards")
    return pa.Array.from_buffers(
        pa.binary(),
        len(offsets) - 1,
        [None, pa.py_buffer(np.asarray(offsets, np.int32).tobytes()), pa.py_buffer(blob)],
    )


def _vocab_bits(table: pa.Table, vocab_size: int | None) -> np.ndarray | int:
    if vocab_size is not None:
        return bitpack.bits_for(vocab_size)
    if "teacher" in table.column_names:
        vocab = pc.struct_field(_combined(table.column("teacher")), "vocab_size")
        sizes = vocab.to_numpy(zero_copy_only=False).astype(np.int64)
        return np.array([bitpack.bits_for(int(v)) for v in np.unique(sizes)])[
            np.searchsorted(np.unique(sizes), sizes)
        ]
    raise ValueError("no `teacher` column to read the vocab size from; pass vocab_size")


def encode_table(table: pa.Table, codec: str = "packed", vocab_size: int | None = None) -> pa.Table:
    """`table` (any layout) re-encoded with `codec`; other columns and their order are kept.

    The id width comes from each row's `teacher.vocab_size` unless `vocab_size` is given.
    A table with exactly the record (or rejected-row) columns gets that codec's schema.
    """
    if codec_of(table) == codec:
        return table
    topk = decode_topk(table)
    if codec == "packed":
        new = encode_topk(topk, _vocab_bits(table, vocab_size))
        old_names = PLAIN_TOPK_COLUMNS
    elif codec == "plain":
        new = plain_topk_columns(topk)
        old_names = PACKED_TOPK_COLUMNS
    else:
        raise ValueError(f"unknown top-k codec {codec!r}")
    names, arrays = [], []
    for name in table.column_names:
        if name == old_names[0]:
            names.extend(new)
            arrays.extend(new.values())
        elif name not in old_names:
            names.append(name)
            arrays.append(table.column(name))
    out = pa.table(dict(zip(names, arrays, strict=True)))
    for rejected in (False, True):
        schema = schema_for(codec, rejected=rejected)
        if sorted(out.column_names) == sorted(schema.names):
            return out.select(schema.names).cast(schema)
    return out


def plain_topk_columns(topk: TopK) -> dict[str, pa.Array]:
    """The plain (schema 1) top-k columns of a decoded `TopK`: one list entry per row."""
    tok_offsets = np.concatenate([[0], np.cumsum(topk.k_per_token)]).astype(np.int32)
    row_offsets = pa.array(np.concatenate([[0], np.cumsum(topk.tokens_per_row)]).astype(np.int32))

    def nested(values: pa.Array) -> pa.Array:
        inner = pa.ListArray.from_arrays(pa.array(tok_offsets), values)
        return pa.ListArray.from_arrays(row_offsets, inner)

    return {
        "topk_ids": nested(pa.array(topk.ids.astype(np.int32))),
        "topk_logprobs": nested(pa.array(topk.logprobs.astype(np.float32))),
        "tail_mass": pa.ListArray.from_arrays(row_offsets, pa.array(topk.tail.astype(np.float32))),
    }
