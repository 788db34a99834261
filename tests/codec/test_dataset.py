"""Packed datasets on disk: pack, read back, collate, filter rows; schema 1 stays readable."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch

from distill.codec import LOGPROB_BOUND, decode_topk, encode_table, pack_dataset
from distill.schemas import RECORD_SCHEMA_V2, records_to_table
from distill.store import DatasetError, load_manifest, read_table, shard_paths
from distill.train.collate import RecordCollator, collate_rows
from tests.factories import make_record, write_fake_dataset


@pytest.fixture
def plain_dir(tmp_path: Path) -> Path:
    records = [make_record(row=i, n_tokens=3 + i, top_k=5) for i in range(6)]
    write_fake_dataset(tmp_path / "plain", records)
    return tmp_path / "plain"


def test_pack_writes_schema_2_with_parent_and_same_rows(plain_dir: Path, tmp_path: Path):
    result = pack_dataset(plain_dir, tmp_path / "packed")
    manifest = load_manifest(tmp_path / "packed")
    assert (manifest.schema_version, manifest.codec) == (2, "packed")
    assert manifest.parents[0].dataset_id == load_manifest(plain_dir).dataset_id
    packed, plain = read_table(tmp_path / "packed"), read_table(plain_dir)
    assert packed.schema.equals(RECORD_SCHEMA_V2)
    assert packed.schema.metadata == RECORD_SCHEMA_V2.metadata
    assert packed.column("record_id").equals(plain.column("record_id"))
    assert result.rows == 6
    a, b = decode_topk(plain), decode_topk(packed)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert np.abs(a.logprobs - b.logprobs).max() <= LOGPROB_BOUND + 1e-5


def test_packed_columns_are_written_without_dictionary_pages(plain_dir: Path, tmp_path: Path):
    pack_dataset(plain_dir, tmp_path / "packed")
    meta = pq.ParquetFile(shard_paths(tmp_path / "packed")[0]).metadata.row_group(0)
    encodings = {
        meta.column(i).path_in_schema.split(".")[0]: meta.column(i).encodings
        for i in range(meta.num_columns)
    }
    for name in ("topk_ids_packed", "topk_logprob_codes", "topk_ref_logprob", "tail_mass"):
        assert "RLE_DICTIONARY" not in encodings[name], name
    assert meta.column(0).compression == "ZSTD"


def test_both_layouts_collate_to_the_same_tensors(plain_dir: Path, tmp_path: Path):
    pack_dataset(plain_dir, tmp_path / "packed")
    plain, packed = read_table(plain_dir), read_table(tmp_path / "packed")
    x, y = (
        collate_rows(plain.slice(1, 3)),
        RecordCollator(packed)([{"row_index": i} for i in (1, 2, 3)]),
    )
    for key in ("input_ids", "labels", "teacher_ids", "teacher_topk_mask", "target_mask"):
        assert torch.equal(x[key], y[key]), key
    assert (x["teacher_logprobs"] - y["teacher_logprobs"]).abs().max() <= LOGPROB_BOUND + 1e-5
    assert (y["teacher_tail"] >= x["teacher_tail"]).all()


def test_row_filtering_keeps_each_rows_payload(plain_dir: Path, tmp_path: Path):
    pack_dataset(plain_dir, tmp_path / "packed")
    packed, plain = read_table(tmp_path / "packed"), read_table(plain_dir)
    keep = pc.greater(pc.list_value_length(packed.column("token_ids")), 5)
    kept_p, kept_v = packed.filter(keep), plain.filter(keep)
    assert kept_p.num_rows == 3
    np.testing.assert_array_equal(decode_topk(kept_p).ids, decode_topk(kept_v).ids)


def test_packing_into_a_used_out_redoes_the_same_job_and_refuses_others(
    plain_dir: Path, tmp_path: Path
):
    pack_dataset(plain_dir, tmp_path / "packed")
    first = {p.name: p.read_bytes() for p in [*shard_paths(tmp_path / "packed")]}
    manifest = (tmp_path / "packed" / "manifest.json").read_bytes()
    pack_dataset(plain_dir, tmp_path / "packed")  # the same job again: redone, identical
    assert {p.name: p.read_bytes() for p in shard_paths(tmp_path / "packed")} == first
    assert (tmp_path / "packed" / "manifest.json").read_bytes() == manifest
    with pytest.raises(DatasetError, match="another `distill pack`"):
        pack_dataset(plain_dir, tmp_path / "packed", codec="plain")
    with pytest.raises(DatasetError, match="already holds"):
        pack_dataset(tmp_path / "packed", plain_dir, codec="plain")


def test_records_to_table_packed_and_back_to_plain(tmp_path: Path):
    records = [make_record(row=i, n_tokens=2 + i, top_k=3) for i in range(3)]
    packed = encode_table(records_to_table(records), "packed")
    assert packed.schema.equals(RECORD_SCHEMA_V2)
    pack_dataset_roundtrip = pack_dataset  # plain <- packed through the same entry point
    write_fake_dataset(tmp_path / "p", records)
    pack_dataset_roundtrip(tmp_path / "p", tmp_path / "v2")
    pack_dataset_roundtrip(tmp_path / "v2", tmp_path / "v1", codec="plain")
    assert load_manifest(tmp_path / "v1").schema_version == 1
    back = read_table(tmp_path / "v1")
    assert back.column("topk_ids").to_pylist() == [r.topk_ids for r in records]


def test_a_newer_schema_version_is_refused(plain_dir: Path):
    path = plain_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    path.write_text(json.dumps({**manifest, "schema_version": 3}))
    with pytest.raises(DatasetError, match="newer than this distill"):
        load_manifest(plain_dir)


def test_empty_packed_dataset_reads_with_the_packed_schema(tmp_path: Path):
    write_fake_dataset(tmp_path / "e", [])
    pack_dataset(tmp_path / "e", tmp_path / "ev2")
    assert read_table(tmp_path / "ev2").schema.names == RECORD_SCHEMA_V2.names


def test_cli_pack_verb(plain_dir: Path, tmp_path: Path):
    from typer.testing import CliRunner

    from distill.cli import app

    result = CliRunner().invoke(app, ["pack", str(plain_dir), "--out", str(tmp_path / "v2")])
    assert result.exit_code == 0, result.output
    assert load_manifest(tmp_path / "v2").codec == "packed"
    bad = CliRunner().invoke(
        app, ["pack", str(plain_dir), "--out", str(tmp_path / "x"), "--codec", "zip"]
    )
    assert bad.exit_code == 2
