"""Packed top-k as plain lists inside DuckDB: three SQL functions over the packed columns.

`distill_topk_ids(...)`, `distill_topk_logprobs(...)` and `distill_tail_mass(...)` each take
a packed row's six top-k columns (`PACKED_TOPK_COLUMNS`) and return what the plain layout
stores: `INTEGER[][]`, `FLOAT[][]` and `FLOAT[]`. They are Arrow functions: DuckDB hands
them whole vectors, which `distill.codec.decode_topk` decodes without a per-token loop.
A records view selects them under the plain names, so one query reads both codecs alike;
DuckDB evaluates a function only when a query reads its column.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb
import pyarrow as pa

from distill.codec import decode_topk, plain_topk_columns
from distill.schemas import PACKED_TOPK_COLUMNS, Manifest, schema_for

# DuckDB types of PACKED_TOPK_COLUMNS, in order (float16 tails are read as FLOAT).
_PACKED_TYPES = ["USMALLINT", "UTINYINT", "BLOB", "BLOB", "FLOAT[]", "FLOAT[]"]
FUNCTIONS = {
    "topk_ids": ("distill_topk_ids", "INTEGER[][]"),
    "topk_logprobs": ("distill_topk_logprobs", "FLOAT[][]"),
    "tail_mass": ("distill_tail_mass", "FLOAT[]"),
}


def _decoder(column: str) -> Callable[..., pa.Array]:
    # DuckDB counts a function's parameters, so the six columns are named one by one.
    def decode(
        k: pa.ChunkedArray,
        bits: pa.ChunkedArray,
        ids: pa.ChunkedArray,
        codes: pa.ChunkedArray,
        ref: pa.ChunkedArray,
        tail: pa.ChunkedArray,
    ) -> pa.Array:
        packed = (k, bits, ids, codes, ref, tail)
        table = pa.table(dict(zip(PACKED_TOPK_COLUMNS, packed, strict=True)))
        return plain_topk_columns(decode_topk(table))[column]

    return decode


def register_topk_functions(connection: duckdb.DuckDBPyConnection) -> None:
    for column, (name, return_type) in FUNCTIONS.items():
        connection.create_function(name, _decoder(column), _PACKED_TYPES, return_type, type="arrow")


def topk_select(manifest: Manifest) -> str:
    """The select list of a dataset's rows in the plain layout's column order."""
    if manifest.codec != "packed":
        return "*"
    rejected = manifest.kind == "rejected"
    packed_args = ", ".join(PACKED_TOPK_COLUMNS)
    columns = []
    for name in schema_for("plain", rejected=rejected).names:
        if name in FUNCTIONS:
            columns.append(f"{FUNCTIONS[name][0]}({packed_args}) AS {name}")
        else:
            columns.append(name)
    return ", ".join(columns)
