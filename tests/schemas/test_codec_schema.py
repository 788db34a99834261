"""Schema 1 and 2 differ only in the top-k columns, and say which codec they are."""

from __future__ import annotations

import pytest

from distill.schemas import (
    PACKED_TOPK_COLUMNS,
    PLAIN_TOPK_COLUMNS,
    RECORD_SCHEMA,
    RECORD_SCHEMA_V2,
    REJECTED_SCHEMA,
    REJECTED_SCHEMA_V2,
    Manifest,
    codec_of,
    schema_for,
)


def test_metadata_names_version_and_codec():
    assert RECORD_SCHEMA.metadata[b"distill.schema_version"] == b"1"
    assert RECORD_SCHEMA.metadata[b"distill.codec"] == b"plain"
    assert RECORD_SCHEMA_V2.metadata[b"distill.schema_version"] == b"2"
    assert RECORD_SCHEMA_V2.metadata[b"distill.codec"] == b"packed"


def test_v2_replaces_only_the_topk_columns_in_place():
    v1 = [n for n in RECORD_SCHEMA.names if n not in PLAIN_TOPK_COLUMNS]
    v2 = [n for n in RECORD_SCHEMA_V2.names if n not in PACKED_TOPK_COLUMNS]
    assert v1 == v2
    at = RECORD_SCHEMA.names.index("topk_ids")
    assert RECORD_SCHEMA_V2.names[at : at + len(PACKED_TOPK_COLUMNS)] == PACKED_TOPK_COLUMNS
    for name in v1:
        assert RECORD_SCHEMA.field(name).equals(RECORD_SCHEMA_V2.field(name)), name


def test_schema_for_reads_codec_names_manifests_and_tables():
    manifest = Manifest(schema_version=2, codec="packed", kind="generated", dataset_id="x")
    assert schema_for(manifest) is RECORD_SCHEMA_V2
    assert schema_for(manifest, rejected=True) is REJECTED_SCHEMA_V2
    assert schema_for("plain", rejected=True) is REJECTED_SCHEMA
    assert schema_for(RECORD_SCHEMA_V2.empty_table()) is RECORD_SCHEMA_V2
    assert codec_of(RECORD_SCHEMA.empty_table().select(["record_id"])) == "plain"
    with pytest.raises(ValueError, match="unknown top-k codec"):
        schema_for("zip")


def test_old_manifests_without_codec_read_as_plain():
    manifest = Manifest.model_validate(
        {"schema_version": 1, "kind": "generated", "dataset_id": "x"}
    )
    assert manifest.codec == "plain"
