"""Writing a dataset incrementally: rows appended batch by batch, a shard every N rows.

`DatasetWriter` is how every one-go writer (curate's kept and rejected rows, pack) emits
its rows: memory holds at most one shard's rows, and shard boundaries depend only on the
row count, so the same rows always give the same shards, byte for byte, however they were
batched on the way in. The manifest is written last, by `close`, so a complete manifest
means a complete dataset.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from distill.schemas import Manifest, ShardInfo
from distill.store.files import DatasetError
from distill.store.shards import save_manifest, shard_paths, write_shard

ROWS_PER_SHARD = 4096


class DatasetWriter:
    """Append rows with `write`; `close(manifest)` writes the rest and the manifest.

    Refuses a directory that already holds shards: outputs are never silently mixed. An
    empty dataset still gets one (empty) shard, so its schema is on disk.
    """

    def __init__(
        self, dataset_dir: Path, schema: pa.Schema, rows_per_shard: int = ROWS_PER_SHARD
    ) -> None:
        self.dataset_dir, self.schema = Path(dataset_dir), schema
        self.rows_per_shard = rows_per_shard
        if shard_paths(self.dataset_dir):
            raise DatasetError(
                f"{self.dataset_dir}: already holds a dataset; choose an empty --out"
            )
        self.dataset_dir.mkdir(parents=True, exist_ok=True)
        self.pending: list[pa.Table] = []
        self.pending_rows = 0
        self.rows = 0
        self.shards: list[ShardInfo] = []

    def write(self, rows: pa.Table | pa.RecordBatch) -> None:
        if isinstance(rows, pa.RecordBatch):
            rows = pa.Table.from_batches([rows])
        if not rows.num_rows:
            return
        self.pending.append(rows)
        self.pending_rows += rows.num_rows
        self.rows += rows.num_rows
        while self.pending_rows >= self.rows_per_shard:
            self._flush(self.rows_per_shard)

    def end_shard(self) -> None:
        """Write the rows since the last shard as one shard now, even none: a writer that
        copies another dataset's shard boundaries (pack) calls this at each of them."""
        self._flush(self.pending_rows)

    def adopt(self, shards: list[ShardInfo]) -> None:
        """List shards that other processes wrote into this dataset (each under a number of
        its own, `write_shard(..., index=N)`), in order, as if written here."""
        if self.pending_rows:
            raise RuntimeError(f"{self.dataset_dir}: adopt shards only into a writer with no rows")
        self.shards.extend(shards)
        self.rows += sum(shard.rows for shard in shards)

    def _flush(self, count: int) -> None:
        if not self.pending:
            self.shards.append(
                write_shard(self.dataset_dir, self.schema.empty_table(), self.schema)
            )
            return
        buffered = pa.concat_tables([self._conform(t) for t in self.pending])
        # One chunk per column: Parquet cuts pages where the chunks end too, so a shard's
        # bytes would otherwise depend on how its rows were batched on the way in.
        shard = buffered.slice(0, count).combine_chunks()
        self.shards.append(write_shard(self.dataset_dir, shard, self.schema))
        rest = buffered.slice(count)
        self.pending = [rest] if rest.num_rows else []
        self.pending_rows = rest.num_rows

    def _conform(self, table: pa.Table) -> pa.Table:
        if table.schema.equals(self.schema, check_metadata=False):
            return table
        return table.cast(self.schema)

    def close(self, manifest: Manifest) -> Manifest:
        """Write the last shard and `manifest` with its `shards` and `counts["rows"]` filled in."""
        if self.pending_rows or not self.shards:
            if self.pending_rows:
                self._flush(self.pending_rows)
            else:
                self.shards.append(
                    write_shard(self.dataset_dir, self.schema.empty_table(), self.schema)
                )
        manifest = manifest.model_copy(
            update={"shards": self.shards, "counts": {**manifest.counts, "rows": self.rows}}
        )
        save_manifest(self.dataset_dir, manifest)
        return manifest


def write_dataset(
    dataset_dir: Path,
    table: pa.Table,
    schema: pa.Schema,
    manifest: Manifest,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> Manifest:
    """Write a whole table as a fresh dataset (see `DatasetWriter`)."""
    writer = DatasetWriter(dataset_dir, schema, rows_per_shard)
    writer.write(table)
    return writer.close(manifest)
