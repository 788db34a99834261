"""Reading a batch at a time and writing incrementally give what the whole-table paths give."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.schemas import records_to_table, schema_for
from distill.store import (
    DatasetError,
    DatasetWriter,
    iter_batches,
    load_manifest,
    read_table,
    shard_paths,
    write_dataset,
)
from tests.factories import make_record, write_table_dataset


def _records(n: int) -> pa.Table:
    return records_to_table([make_record(row=i, n_tokens=1 + i % 5) for i in range(n)])


@pytest.mark.parametrize("codec", ["plain", "packed"])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_iter_batches_yields_read_tables_rows_in_order(
    tmp_path: Path, codec: str, batch_size: int
) -> None:
    write_table_dataset(tmp_path, _records(23), codec=codec, rows_per_shard=5)
    batches = list(iter_batches(tmp_path, batch_size=batch_size))
    assert all(b.num_rows <= batch_size for b in batches)
    streamed = pa.Table.from_batches(batches)
    assert streamed.equals(read_table(tmp_path))
    columns = ["record_id", "token_ids"]
    projected = pa.Table.from_batches(list(iter_batches(tmp_path, 4, columns=columns)))
    assert projected.equals(read_table(tmp_path, columns=columns))


def test_iter_batches_refuses_a_changed_shard(tmp_path: Path) -> None:
    write_table_dataset(tmp_path, _records(10), rows_per_shard=4)
    shard = shard_paths(tmp_path)[1]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    with pytest.raises(DatasetError, match=r"part-00001\.parquet: sha256 differs"):
        list(iter_batches(tmp_path))


@pytest.mark.parametrize("codec", ["plain", "packed"])
def test_shards_depend_on_the_rows_not_on_how_they_were_batched(tmp_path: Path, codec: str) -> None:
    """The same rows written whole, or in uneven pieces, give byte-identical shards."""
    manifest = write_table_dataset(tmp_path / "src", _records(17), codec=codec)
    table = read_table(tmp_path / "src")
    whole = tmp_path / "whole"
    write_dataset(whole, table, schema_for(codec), manifest, rows_per_shard=6)
    pieces = tmp_path / "pieces"
    writer = DatasetWriter(pieces, schema_for(codec), rows_per_shard=6)
    for start, size in [(0, 1), (1, 7), (8, 0), (8, 2), (10, 7)]:
        writer.write(table.slice(start, size))
    written = writer.close(manifest)
    assert [s.rows for s in written.shards] == [6, 6, 5]
    assert [s.sha256 for s in written.shards] == [s.sha256 for s in load_manifest(whole).shards]
    assert written.counts["rows"] == 17
    assert [p.read_bytes() for p in shard_paths(pieces)] == [
        p.read_bytes() for p in shard_paths(whole)
    ]


def test_an_empty_dataset_still_has_a_shard_with_its_schema(tmp_path: Path) -> None:
    manifest = write_table_dataset(tmp_path / "src", _records(1))
    out = tmp_path / "empty"
    written = write_dataset(out, _records(0), schema_for("plain"), manifest)
    assert [s.rows for s in written.shards] == [0]
    assert pq.read_schema(out / written.shards[0].file).names == schema_for("plain").names
    assert list(iter_batches(out)) == []
    with pytest.raises(DatasetError, match="already holds a dataset"):
        DatasetWriter(out, schema_for("plain"))


def test_shards_spanning_several_pages_do_not_depend_on_the_batching(tmp_path: Path) -> None:
    """1,200 distinct 2 kB responses: a shard's `response_text` spans several 1 MiB Parquet
    pages, whose boundaries would follow the pieces the rows came in unless the writer
    joins them."""
    text = "a long response " * 128
    table = records_to_table(
        [make_record(response=f"{i} {text}", row=i, n_tokens=2, top_k=2) for i in range(1200)]
    )
    manifest = write_table_dataset(tmp_path / "whole", table, rows_per_shard=1000)
    group = pq.ParquetFile(shard_paths(tmp_path / "whole")[0]).metadata.row_group(0)
    leaves = [group.column(i) for i in range(group.num_columns)]
    responses = next(c for c in leaves if c.path_in_schema == "response_text")
    assert responses.total_uncompressed_size > 2**20
    writer = DatasetWriter(tmp_path / "pieces", schema_for("plain"), rows_per_shard=1000)
    for start in range(0, table.num_rows, 7):
        writer.write(table.slice(start, 7))
    writer.close(manifest)
    assert [p.read_bytes() for p in shard_paths(tmp_path / "pieces")] == [
        p.read_bytes() for p in shard_paths(tmp_path / "whole")
    ]


def test_end_shard_cuts_a_shard_where_the_caller_says(tmp_path: Path) -> None:
    table = _records(12)
    manifest = write_table_dataset(tmp_path / "src", table)
    writer = DatasetWriter(tmp_path / "out", schema_for("plain"), rows_per_shard=8)
    writer.write(table.slice(0, 3))
    writer.end_shard()
    writer.end_shard()  # nothing since the last cut: an empty shard, as asked
    writer.write(table.slice(3, 9))
    written = writer.close(manifest)
    assert [s.rows for s in written.shards] == [3, 0, 8, 1]
    assert read_table(tmp_path / "out").equals(read_table(tmp_path / "src"))


def test_shards_are_listed_by_number_past_five_digits(tmp_path):
    from distill.store import next_shard_path, shard_paths

    data = tmp_path / "data"
    data.mkdir()
    for name in ["part-100000.parquet", "part-99999.parquet", "part-00002.parquet"]:
        (data / name).write_bytes(b"")
    names = [p.name for p in shard_paths(tmp_path)]
    assert names == ["part-00002.parquet", "part-99999.parquet", "part-100000.parquet"]
    assert next_shard_path(tmp_path).name == "part-100001.parquet"
