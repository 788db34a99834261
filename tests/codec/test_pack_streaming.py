"""`distill pack` streams batch by batch, yet writes the shards a whole-shard conversion
(the pack of before the out-of-core work, kept here as the reference) wrote, byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.codec import dataset as pack_module
from distill.codec import encode_table, pack_dataset
from distill.schemas import schema_for
from distill.store import load_manifest, read_shard, read_table, write_shard
from tests.factories import write_table_dataset

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "smollm2_mmlu.parquet"


def whole_shard_pack(src: Path, dst: Path, codec: str) -> list[tuple[int, str]]:
    """The reference: each source shard read whole, re-encoded, written as one shard
    (the loop of `pack_dataset` before it streamed). (rows, sha256) per shard written."""
    manifest = load_manifest(src)
    schema = schema_for(codec, rejected=manifest.kind == "rejected")
    shards = []
    for shard in manifest.shards:
        table = encode_table(read_shard(src / shard.file, shard.sha256), codec)
        shards.append(write_shard(dst, table, schema))
    return [(s.rows, s.sha256) for s in shards]


def shard_digests(dataset_dir: Path) -> list[tuple[int, str]]:
    """(rows, sha256 computed from the file) of every shard the manifest lists."""
    shards = load_manifest(dataset_dir).shards
    return [
        (s.rows, hashlib.sha256((dataset_dir / s.file).read_bytes()).hexdigest()) for s in shards
    ]


@pytest.fixture
def smollm2_plain(tmp_path: Path) -> Path:
    # The 300 real SmolLM2 rows 16 times over (pack reads no record ids), in shards of 4000
    # and 800 rows: a shard's columns span several Parquet pages (1 MiB each), where the
    # batches its rows came in could move the page boundaries.
    table = pa.concat_tables([pq.read_table(FIXTURE)] * 16)
    write_table_dataset(tmp_path / "plain", table, rows_per_shard=4000)
    return tmp_path / "plain"


@pytest.mark.parametrize("batch_rows", [700, 1024])
def test_pack_both_ways_is_byte_identical_to_the_whole_shard_pack(
    smollm2_plain: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch_rows: int
) -> None:
    monkeypatch.setattr(pack_module, "PACK_BATCH_ROWS", batch_rows)
    pack_dataset(smollm2_plain, tmp_path / "packed")
    expected_packed = whole_shard_pack(smollm2_plain, tmp_path / "ref-packed", "packed")
    assert [rows for rows, _ in expected_packed] == [4000, 800]
    assert shard_digests(tmp_path / "packed") == expected_packed
    pack_dataset(tmp_path / "packed", tmp_path / "back", codec="plain")
    expected_back = whole_shard_pack(tmp_path / "packed", tmp_path / "ref-back", "plain")
    assert shard_digests(tmp_path / "back") == expected_back
    assert load_manifest(tmp_path / "back").counts["rows"] == 4800
    # a codec round trip changes only the top-k columns, whose ids are exact
    back, source = read_table(tmp_path / "back"), read_table(smollm2_plain)
    assert back.column("topk_ids").equals(source.column("topk_ids"))
    assert back.column("response_text").equals(source.column("response_text"))


def test_a_shard_of_no_rows_stays_a_shard(tmp_path: Path) -> None:
    table = pq.read_table(FIXTURE).slice(0, 5)
    write_table_dataset(tmp_path / "plain", table, rows_per_shard=5)
    manifest = load_manifest(tmp_path / "plain")
    # a second, empty shard, as an old pack of a dataset holding one wrote it
    manifest.shards.append(write_shard(tmp_path / "plain", table.slice(0, 0), schema_for("plain")))
    (tmp_path / "plain" / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    pack_dataset(tmp_path / "plain", tmp_path / "packed")
    expected = whole_shard_pack(tmp_path / "plain", tmp_path / "ref", "packed")
    assert [rows for rows, _ in expected] == [5, 0]
    assert shard_digests(tmp_path / "packed") == expected
