"""The Arrow schema and the pydantic models must describe the same record."""

import pyarrow as pa

from distill.schemas import RECORD_SCHEMA, REJECTED_SCHEMA, TeacherRecord, records_to_table
from distill.schemas.records import TeacherInfo
from tests.factories import make_record


def test_every_model_field_is_a_column_and_back() -> None:
    assert set(TeacherRecord.model_fields) == set(RECORD_SCHEMA.names)
    teacher_type = RECORD_SCHEMA.field("teacher").type
    assert {teacher_type.field(i).name for i in range(teacher_type.num_fields)} == set(
        TeacherInfo.model_fields
    )


def test_topk_columns_are_top_level_lists_not_structs() -> None:
    assert RECORD_SCHEMA.field("topk_ids").type == pa.list_(pa.list_(pa.int32()))
    assert RECORD_SCHEMA.field("topk_logprobs").type == pa.list_(pa.list_(pa.float32()))


def test_round_trip_through_arrow_keeps_every_value() -> None:
    records = [make_record(row=i, domain=None if i else "math") for i in range(3)]
    table = records_to_table(records)
    assert table.schema.equals(RECORD_SCHEMA, check_metadata=True)
    back = [TeacherRecord.model_validate(row) for row in table.to_pylist()]
    for original, restored in zip(records, back, strict=True):
        assert restored.model_dump(exclude={"topk_logprobs", "sampled_logprob", "tail_mass"}) == (
            original.model_dump(exclude={"topk_logprobs", "sampled_logprob", "tail_mass"})
        )


def test_rejected_schema_is_the_record_schema_plus_reasons() -> None:
    assert REJECTED_SCHEMA.names[: len(RECORD_SCHEMA.names)] == RECORD_SCHEMA.names
    assert REJECTED_SCHEMA.names[len(RECORD_SCHEMA.names) :] == [
        "reject_step",
        "reject_reason",
        "reject_details",
    ]
    assert RECORD_SCHEMA.metadata[b"distill.schema_version"] == b"1"
