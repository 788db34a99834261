"""The one explicit, versioned Arrow schema every shard is written with.

Never inferred from data: a `None` in a later batch can't change a column's type
after hours of generation (datatrove's Parquet writer infers from the first batch).
Top-k ids and log-probs are top-level list columns (not a list of structs) so that
they can be read as flat arrays and decoded into tensors without a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from distill.schemas.records import TeacherRecord

SCHEMA_VERSION = 1

SAMPLING_TYPE = pa.struct(
    [
        ("temperature", pa.float64()),
        ("top_p", pa.float64()),
        ("max_new_tokens", pa.int32()),
        ("seed", pa.int64()),
        ("n", pa.int32()),
    ]
)

TEACHER_TYPE = pa.struct(
    [
        ("model_id", pa.string()),
        ("revision", pa.string()),
        ("backend", pa.string()),
        ("tokenizer_hash", pa.string()),
        ("vocab_size", pa.int32()),
        ("chat_template_hash", pa.string()),
        ("logprobs_mode", pa.string()),
        ("top_k", pa.int32()),
        ("sampling", SAMPLING_TYPE),
    ]
)

MESSAGE_TYPE = pa.struct([("role", pa.string()), ("content", pa.string())])

_FIELDS = [
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("prompt_id", pa.string(), nullable=False),
    pa.field("sample_index", pa.int32(), nullable=False),
    pa.field("teacher_id", pa.string(), nullable=False),
    pa.field("run_id", pa.string(), nullable=False),
    pa.field("created_at", pa.timestamp("us", tz="UTC"), nullable=False),
    pa.field("source_file", pa.string(), nullable=False),
    pa.field("source_row", pa.int64(), nullable=False),
    pa.field("domain", pa.string()),
    pa.field("reference", pa.string()),
    pa.field("messages", pa.list_(MESSAGE_TYPE), nullable=False),
    pa.field("prompt_token_ids", pa.list_(pa.int32()), nullable=False),
    pa.field("response_text", pa.string(), nullable=False),
    pa.field("token_ids", pa.list_(pa.int32()), nullable=False),
    pa.field("topk_ids", pa.list_(pa.list_(pa.int32())), nullable=False),
    pa.field("topk_logprobs", pa.list_(pa.list_(pa.float32())), nullable=False),
    pa.field("sampled_logprob", pa.list_(pa.float32()), nullable=False),
    pa.field("tail_mass", pa.list_(pa.float32()), nullable=False),
    pa.field("finish_reason", pa.string(), nullable=False),
    pa.field("teacher", TEACHER_TYPE, nullable=False),
]

RECORD_SCHEMA = pa.schema(_FIELDS, metadata={b"distill.schema_version": str(SCHEMA_VERSION)})

# A rejected row is a record plus why it was dropped, so nothing is ever lost.
REJECT_COLUMNS = [
    pa.field("reject_step", pa.string(), nullable=False),
    pa.field("reject_reason", pa.string(), nullable=False),
    pa.field("reject_details", pa.string(), nullable=False),  # JSON object
]
REJECTED_SCHEMA = pa.schema(
    _FIELDS + REJECT_COLUMNS, metadata={b"distill.schema_version": str(SCHEMA_VERSION)}
)


def record_to_row(record: TeacherRecord) -> dict[str, Any]:
    row = record.model_dump(mode="python")
    row["finish_reason"] = record.finish_reason.value
    row["teacher"]["logprobs_mode"] = record.teacher.logprobs_mode.value
    return row


def records_to_table(records: Iterable[TeacherRecord]) -> pa.Table:
    return pa.Table.from_pylist([record_to_row(r) for r in records], schema=RECORD_SCHEMA)
