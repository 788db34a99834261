"""Bytes per token and KL(exact top-k || decoded) per codec, on real teacher outputs.

Baselines, written with the same Parquet writer: int32 ids + float32 log-probs + float32
tail (schema 1 as `distill gen` writes it) and int32 + float16. KL is over the k + 1
buckets the loss uses (`teacher_bucket_logprobs`, T = 1), per token, then averaged.
"""

from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from distill.codec import TopK, decode_topk, encode_table
from distill.codec.topk import plain_topk_columns
from distill.schemas import PACKED_TOPK_COLUMNS, PLAIN_TOPK_COLUMNS
from distill.store import parquet_options
from distill.train.losses import teacher_bucket_logprobs


def truncate_k(table: pa.Table, k: int) -> pa.Table:
    """The exact top-k of a plain table with a larger (sorted) top-k: first k entries,
    tail recomputed as 1 - sum(exp). Equals what a capture at `--top-k k` writes."""
    topk = decode_topk(table)
    ids, lps, _ = topk.padded()
    ids, lps = ids[:, :k], lps[:, :k]
    tail = np.clip(1.0 - np.exp(lps.astype(np.float64)).sum(1), 0.0, 1.0).astype(np.float32)
    n = ids.shape[0]
    small = TopK(ids.ravel(), lps.ravel(), np.full(n, k), tail, topk.tokens_per_row)
    cols = plain_topk_columns(small)
    out = table
    for name in PLAIN_TOPK_COLUMNS:
        out = out.set_column(out.column_names.index(name), name, cols[name])
    return out


def _topk_bytes(table: pa.Table, columns: list[str], **options) -> int:
    buf = io.BytesIO()
    pq.write_table(table.select(columns), buf, **options)
    meta = pq.ParquetFile(io.BytesIO(buf.getvalue())).metadata
    return sum(
        meta.row_group(g).column(c).total_compressed_size
        for g in range(meta.num_row_groups)
        for c in range(meta.num_columns)
    )


def _float16_plain(table: pa.Table) -> pa.Table:
    lp_type = pa.list_(pa.list_(pa.float16()))
    out = table.set_column(
        table.column_names.index("topk_logprobs"),
        "topk_logprobs",
        table.column("topk_logprobs").cast(lp_type),
    )
    return out.set_column(
        out.column_names.index("tail_mass"),
        "tail_mass",
        out.column("tail_mass").cast(pa.list_(pa.float16())),
    )


def mean_kl(exact: TopK, decoded: TopK) -> float:
    """Mean over tokens of KL(exact || decoded) on the k + 1 buckets (T = 1)."""
    _, lp_a, mask = exact.padded()
    _, lp_b, _ = decoded.padded()
    p = teacher_bucket_logprobs(
        torch.tensor(lp_a, dtype=torch.float64), torch.tensor(exact.tail, dtype=torch.float64),
        torch.tensor(mask),
    )  # fmt: skip
    q = teacher_bucket_logprobs(
        torch.tensor(lp_b, dtype=torch.float64), torch.tensor(decoded.tail, dtype=torch.float64),
        torch.tensor(mask),
    )  # fmt: skip
    prob = p.exp()
    kl = torch.where(prob > 0, prob * (p - q), torch.zeros_like(p)).sum(-1)
    return float(kl.mean())


def codec_rows(table: pa.Table) -> list[dict]:
    """One row per layout: bytes/token of the top-k columns, ratio to int32+float32, KL."""
    exact = decode_topk(table)
    tokens = int(exact.tokens_per_row.sum())
    plain_opts = parquet_options(pa.schema([("topk_ids", pa.int32())]))  # schema-1 writer
    packed = encode_table(table, "packed")
    f16 = _float16_plain(table)
    from distill.schemas import RECORD_SCHEMA_V2

    cases = [
        ("int32 + float32 (schema 1)", table, PLAIN_TOPK_COLUMNS, plain_opts),
        ("int32 + float16", f16, PLAIN_TOPK_COLUMNS, plain_opts),
        ("packed (schema 2)", packed, PACKED_TOPK_COLUMNS, parquet_options(RECORD_SCHEMA_V2)),
    ]
    rows = []
    base = None
    for name, t, cols, opts in cases:
        opts = dict(opts)
        if isinstance(opts.get("use_dictionary"), list):
            opts["use_dictionary"] = [c for c in opts["use_dictionary"] if c in cols]
        size = _topk_bytes(t, cols, **opts) / max(tokens, 1)
        base = base or size
        rows.append(
            {
                "codec": name,
                "bytes_per_token": size,
                "ratio": size / base,
                "kl": mean_kl(exact, decode_topk(t)),
            }
        )
    return rows
