"""The data contract: pydantic models for records and manifests, and the one Arrow schema."""

from distill.schemas.arrow import (
    CODECS,
    LATEST_SCHEMA_VERSION,
    PACKED_TOPK_COLUMNS,
    PLAIN_TOPK_COLUMNS,
    RECORD_SCHEMA,
    RECORD_SCHEMA_V2,
    REJECT_COLUMNS,
    REJECTED_SCHEMA,
    REJECTED_SCHEMA_V2,
    SCHEMA_VERSION,
    SCHEMA_VERSION_PACKED,
    codec_of,
    records_to_table,
    schema_for,
)
from distill.schemas.manifest import Manifest, ParentRef, ShardInfo
from distill.schemas.records import (
    LogprobsMode,
    Message,
    SamplingParams,
    TeacherInfo,
    TeacherRecord,
    make_record_id,
)

__all__ = [
    "CODECS",
    "LATEST_SCHEMA_VERSION",
    "PACKED_TOPK_COLUMNS",
    "PLAIN_TOPK_COLUMNS",
    "RECORD_SCHEMA",
    "RECORD_SCHEMA_V2",
    "REJECTED_SCHEMA",
    "REJECTED_SCHEMA_V2",
    "REJECT_COLUMNS",
    "SCHEMA_VERSION",
    "SCHEMA_VERSION_PACKED",
    "LogprobsMode",
    "Manifest",
    "Message",
    "ParentRef",
    "SamplingParams",
    "ShardInfo",
    "TeacherInfo",
    "TeacherRecord",
    "codec_of",
    "make_record_id",
    "records_to_table",
    "schema_for",
]
