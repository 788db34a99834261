"""Datasets on disk: a directory of Parquet shards plus `manifest.json`.

- `files`: atomic writes, sha256, temporaries a crash left;
- `shards`: shard names, writing one shard, the manifest;
- `read`: verified reads, whole or a batch at a time;
- `write`: incremental writing of a whole dataset, a shard every N rows.
"""

from distill.store.files import (
    DATA_DIR,
    DatasetError,
    OutputWriteError,
    atomic_write_bytes,
    remove_stale_temporaries,
    sha256_file,
    write_json,
)
from distill.store.read import (
    DEFAULT_BATCH_ROWS,
    check_listing,
    check_shard_bytes,
    damaged_shard,
    iter_batches,
    read_shard,
    read_table,
    shard_batches,
    verify_shards,
)
from distill.store.shards import (
    MANIFEST_NAME,
    PACKED_ZSTD_LEVEL,
    load_manifest,
    new_dataset_id,
    next_shard_number,
    next_shard_path,
    parent_ref,
    parquet_options,
    save_manifest,
    scan_shards,
    shard_number,
    shard_path,
    shard_paths,
    write_shard,
)
from distill.store.write import ROWS_PER_SHARD, DatasetWriter, write_dataset

__all__ = [
    "DATA_DIR",
    "DEFAULT_BATCH_ROWS",
    "MANIFEST_NAME",
    "PACKED_ZSTD_LEVEL",
    "ROWS_PER_SHARD",
    "DatasetError",
    "DatasetWriter",
    "OutputWriteError",
    "atomic_write_bytes",
    "check_listing",
    "check_shard_bytes",
    "damaged_shard",
    "iter_batches",
    "load_manifest",
    "new_dataset_id",
    "next_shard_number",
    "next_shard_path",
    "parent_ref",
    "parquet_options",
    "read_shard",
    "read_table",
    "remove_stale_temporaries",
    "save_manifest",
    "scan_shards",
    "sha256_file",
    "shard_batches",
    "shard_number",
    "shard_path",
    "shard_paths",
    "verify_shards",
    "write_dataset",
    "write_json",
    "write_shard",
]
