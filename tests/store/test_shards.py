import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from distill.schemas import RECORD_SCHEMA, records_to_table
from distill.store import (
    DatasetError,
    load_manifest,
    read_table,
    remove_stale_temporaries,
    scan_shards,
    shard_paths,
    verify_shards,
    write_shard,
)
from tests.factories import make_record, write_fake_dataset


def test_shards_are_numbered_and_written_with_the_explicit_schema(tmp_path: Path) -> None:
    first = write_shard(tmp_path, records_to_table([make_record(row=0)]), RECORD_SCHEMA)
    second = write_shard(tmp_path, records_to_table([make_record(row=1)]), RECORD_SCHEMA)
    assert (first.file, second.file) == ("data/part-00000.parquet", "data/part-00001.parquet")
    schema = pq.read_schema(tmp_path / first.file)
    # Parquet names list items "element" on the way back; names, types, nullability and
    # the version stamp are what must survive.
    assert schema.names == RECORD_SCHEMA.names
    assert [f.nullable for f in schema] == [f.nullable for f in RECORD_SCHEMA]
    assert schema.metadata == RECORD_SCHEMA.metadata
    pq.read_table(tmp_path / first.file).cast(RECORD_SCHEMA)
    assert [s.sha256 for s in scan_shards(tmp_path)] == [first.sha256, second.sha256]
    assert not list((tmp_path / "data").glob(".*"))  # no temporaries left behind


def test_stale_temporaries_are_removed_and_never_read(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path, [make_record(row=0)])
    (tmp_path / "data" / ".part-00001.parquet.abcd.tmp").write_bytes(b"partial")
    assert len(shard_paths(tmp_path)) == 1
    assert read_table(tmp_path).num_rows == 1
    assert remove_stale_temporaries(tmp_path) == 1


def test_a_changed_shard_is_detected(tmp_path: Path) -> None:
    manifest = write_fake_dataset(tmp_path, [make_record(row=0), make_record(row=1)])
    verify_shards(tmp_path, manifest)
    shard = tmp_path / manifest.shards[0].file
    pq.write_table(pq.read_table(shard).slice(0, 1), shard)
    with pytest.raises(DatasetError, match="sha256 differs"):
        verify_shards(tmp_path, manifest)


def test_manifest_errors_name_the_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match=r"no manifest\.json"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"kind": "generated"}))
    with pytest.raises(DatasetError, match=r"manifest.json: invalid manifest"):
        load_manifest(tmp_path)
    with pytest.raises(DatasetError, match="not a distill dataset"):
        read_table(tmp_path / "nothing")


def test_newer_schema_versions_are_refused(tmp_path: Path) -> None:
    write_fake_dataset(tmp_path, [make_record()])
    data = json.loads((tmp_path / "manifest.json").read_text())
    data["schema_version"] = 999
    (tmp_path / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="newer than this distill"):
        load_manifest(tmp_path)
