"""`distill pack` on Ray: one task per shard, the output byte-identical to a local pack.

A local pack streams every source shard through one `DatasetWriter` that ends an output
shard wherever a source shard ends (`distill.codec.dataset.recode_shards`). Shards are
independent, so here each source shard is one Ray task that re-encodes it a batch at a
time and writes output shard number i for source shard i: the same rows, in the same
order, made into one table the way `DatasetWriter` makes a shard (cast to the schema, one
chunk per column), so the bytes, the sha256 and the manifest are the local run's.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from distill.codec.topk import encode_table
from distill.engine import EngineConfig, ray_session
from distill.schemas import Manifest, ShardInfo, schema_for
from distill.store import save_manifest, shard_batches, write_shard


def recode_shard(
    source: Path, dst: Path, index: int, codec: str, rejected: bool, batch_rows: int
) -> ShardInfo:
    """One source shard re-encoded to `codec` as shard `index` of `dst` (run in a task).
    The source was verified against its manifest before the job began."""
    schema = schema_for(codec, rejected=rejected)
    parts = [
        _conform(encode_table(pa.Table.from_batches([batch]), codec), schema)
        for batch in shard_batches(source, None, batch_size=batch_rows)
        if batch.num_rows
    ]
    # As `DatasetWriter._flush`: one chunk per column, or Parquet's pages (and so the
    # bytes) would depend on how the rows were batched.
    table = pa.concat_tables(parts).combine_chunks() if parts else schema.empty_table()
    return write_shard(dst, table, schema, index=index)


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    return table if table.schema.equals(schema, check_metadata=False) else table.cast(schema)


def recode_on_ray(
    src: Path, manifest: Manifest, dst: Path, codec: str, engine: EngineConfig, batch_rows: int
) -> Manifest:
    """Every shard of `src` re-encoded into `dst` by a Ray task of its own; writes and
    returns `manifest` completed with the new shards and row count, as
    `DatasetWriter.close` does."""
    rejected = manifest.kind == "rejected"
    dst.mkdir(parents=True, exist_ok=True)
    with ray_session(engine) as ray:
        task = ray.remote(num_cpus=1)(recode_shard)
        shards: list[ShardInfo] = ray.get(
            [
                task.remote(src / shard.file, dst, index, codec, rejected, batch_rows)
                for index, shard in enumerate(manifest.shards)
            ]
        )
    rows = sum(shard.rows for shard in shards)
    done = manifest.model_copy(
        update={"shards": shards, "counts": {**manifest.counts, "rows": rows}}
    )
    save_manifest(dst, done)
    return done
