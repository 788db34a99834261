"""The data contract: pydantic models for records and manifests, and the one Arrow schema."""

from distill.schemas.arrow import (
    RECORD_SCHEMA,
    REJECT_COLUMNS,
    REJECTED_SCHEMA,
    SCHEMA_VERSION,
    records_to_table,
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
    "RECORD_SCHEMA",
    "REJECTED_SCHEMA",
    "REJECT_COLUMNS",
    "SCHEMA_VERSION",
    "LogprobsMode",
    "Manifest",
    "Message",
    "ParentRef",
    "SamplingParams",
    "ShardInfo",
    "TeacherInfo",
    "TeacherRecord",
    "make_record_id",
    "records_to_table",
]
