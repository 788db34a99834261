"""The explicit, versioned Arrow schemas every shard is written with.

Never inferred from data: a `None` in a later batch can't change a column's type
after hours of generation (datatrove's Parquet writer infers from the first batch).

Two layouts of the same record, told apart by `distill.schema_version` and
`distill.codec` in the schema metadata (and `schema_version` / `codec` in the manifest):

  * version 1, codec "plain" (`RECORD_SCHEMA`): top-k ids and log-probs as top-level
    `list<list<int32 | float32>>` columns, tail mass as `list<float32>`;
  * version 2, codec "packed" (`RECORD_SCHEMA_V2`): the same top-k in ~30 % of the bytes
    (see `distill.codec`): per row a bit-packed id blob, a blob of 8-bit log-prob codes, the
    per-token best log-prob and a float16 tail. Every other column is unchanged and each
    row still carries its own top-k, so filter / take on whole rows works on both.

Either way the columns read as flat arrays and decode into tensors without a Python loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa

from distill.schemas.records import TeacherRecord

SCHEMA_VERSION = 1  # the plain layout, RECORD_SCHEMA; what a v1-only writer produces
SCHEMA_VERSION_PACKED = 2  # RECORD_SCHEMA_V2
LATEST_SCHEMA_VERSION = SCHEMA_VERSION_PACKED  # the newest this distill can read
CODECS = {"plain": SCHEMA_VERSION, "packed": SCHEMA_VERSION_PACKED}

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

PLAIN_TOPK_COLUMNS = ["topk_ids", "topk_logprobs", "tail_mass"]
# The packed top-k (see distill.codec.topk for what each holds), in place of the plain three.
_PACKED_TOPK_FIELDS = [
    pa.field("topk_k", pa.uint16(), nullable=False),  # k of every token of the row
    pa.field("topk_id_bits", pa.uint8(), nullable=False),  # ceil(log2 vocab)
    pa.field("topk_ids_packed", pa.binary(), nullable=False),
    pa.field("topk_logprob_codes", pa.binary(), nullable=False),
    pa.field("topk_ref_logprob", pa.list_(pa.float32()), nullable=False),
    pa.field("tail_mass", pa.list_(pa.float16()), nullable=False),
]
PACKED_TOPK_COLUMNS = [f.name for f in _PACKED_TOPK_FIELDS]


def _packed_fields(fields: list[pa.Field]) -> list[pa.Field]:
    out: list[pa.Field] = []
    for f in fields:
        if f.name == "topk_ids":
            out.extend(_PACKED_TOPK_FIELDS)
        elif f.name not in PLAIN_TOPK_COLUMNS:
            out.append(f)
    return out


# The packed codec's parameters (docs/format.md specifies the layout byte for byte). They
# live here, with the schema, so every packed shard names them in its own metadata: a
# reader needs the file and the spec, nothing of distill. `distill.codec` encodes with them.
PACKED_LOGPROB_BITS = 8
PACKED_LOGPROB_RANGE = 20.0  # nats below each token's best entry that the 255 steps cover
PACKED_PARAMETERS = {
    "distill.format": "docs/format.md",
    "distill.packed.id_bits": "ceil(log2(vocab_size)), per row in topk_id_bits",
    "distill.packed.id_bit_order": "least significant bit first, token-major",
    "distill.packed.logprob_bits": str(PACKED_LOGPROB_BITS),
    "distill.packed.logprob_range_nats": repr(PACKED_LOGPROB_RANGE),
    "distill.packed.logprob_decode": "ref - code * range / (2^bits - 1)",
    "distill.packed.logprob_codes": "deltas along k, mod 256; the first of each token as is",
    "distill.packed.tail": "float16, rounded toward +inf",
}


def _metadata(codec: str) -> dict[bytes, bytes]:
    metadata = {
        b"distill.schema_version": str(CODECS[codec]).encode(),
        b"distill.codec": codec.encode(),
    }
    if codec == "packed":
        metadata.update({k.encode(): v.encode() for k, v in PACKED_PARAMETERS.items()})
    return metadata


RECORD_SCHEMA = pa.schema(_FIELDS, metadata=_metadata("plain"))
RECORD_SCHEMA_V2 = pa.schema(_packed_fields(_FIELDS), metadata=_metadata("packed"))

# A rejected row is a record plus why it was dropped, so nothing is ever lost.
REJECT_COLUMNS = [
    pa.field("reject_step", pa.string(), nullable=False),
    pa.field("reject_reason", pa.string(), nullable=False),
    pa.field("reject_details", pa.string(), nullable=False),  # JSON object
]
REJECTED_SCHEMA = pa.schema(_FIELDS + REJECT_COLUMNS, metadata=_metadata("plain"))
REJECTED_SCHEMA_V2 = pa.schema(
    _packed_fields(_FIELDS) + REJECT_COLUMNS, metadata=_metadata("packed")
)


def codec_of(source: pa.Schema | pa.Table | Any) -> str:
    """ "plain" or "packed": from a manifest's `codec`, or a schema's / table's columns.

    Columns, not metadata, decide for tables: a `select` or `from_pylist` may drop metadata.
    """
    if isinstance(source, pa.Table):
        source = source.schema
    if isinstance(source, pa.Schema):
        return "packed" if "topk_ids_packed" in source.names else "plain"
    codec = getattr(source, "codec", None)
    if codec not in CODECS:
        raise ValueError(f"unknown top-k codec {codec!r}; known: {sorted(CODECS)}")
    return codec


def topk_columns(source: pa.Schema | pa.Table | Any | str) -> list[str]:
    """The columns that hold the top-k in a codec (by name, manifest, table or schema):
    read them together and decode with `distill.codec.decode_topk`."""
    codec = source if isinstance(source, str) else codec_of(source)
    if codec not in CODECS:
        raise ValueError(f"unknown top-k codec {codec!r}; known: {sorted(CODECS)}")
    return list(PACKED_TOPK_COLUMNS if codec == "packed" else PLAIN_TOPK_COLUMNS)


def schema_for(source: pa.Schema | pa.Table | Any | str, *, rejected: bool = False) -> pa.Schema:
    """The record schema (or, with `rejected`, the rejected-row schema) for a codec name,
    a manifest, a table or a schema: what a writer passes to `store.write_shard`/`write_dataset`.
    """
    codec = source if isinstance(source, str) else codec_of(source)
    if codec not in CODECS:
        raise ValueError(f"unknown top-k codec {codec!r}; known: {sorted(CODECS)}")
    if rejected:
        return REJECTED_SCHEMA_V2 if codec == "packed" else REJECTED_SCHEMA
    return RECORD_SCHEMA_V2 if codec == "packed" else RECORD_SCHEMA


def record_to_row(record: TeacherRecord) -> dict[str, Any]:
    row = record.model_dump(mode="python")
    row["finish_reason"] = record.finish_reason.value
    row["teacher"]["logprobs_mode"] = record.teacher.logprobs_mode.value
    return row


def records_to_table(records: Iterable[TeacherRecord]) -> pa.Table:
    """The records as a plain-codec table (`RECORD_SCHEMA`); `distill.codec.encode_table`
    turns it into another codec. Encoding lives in `codec`, above this ground floor."""
    return pa.Table.from_pylist([record_to_row(r) for r in records], schema=RECORD_SCHEMA)
