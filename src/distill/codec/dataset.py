"""`distill pack`: rewrite a dataset directory with another top-k codec, shard by shard."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from distill.codec.topk import encode_table
from distill.schemas import CODECS, schema_for
from distill.store import (
    DatasetError,
    load_manifest,
    new_dataset_id,
    parent_ref,
    save_manifest,
    shard_paths,
    write_shard,
)


@dataclass
class PackResult:
    out_dir: Path
    codec: str
    rows: int
    bytes_before: int  # sum of the source's shard files
    bytes_after: int


def pack_dataset(src: Path, dst: Path, codec: str = "packed") -> PackResult:
    """Write `src`'s rows to the new dataset `dst` with `codec` ("packed" or "plain").

    Same rows in the same order and the same shard boundaries; only the top-k columns
    change. `dst`'s manifest names `src` as its parent. Refuses a `dst` that holds shards.
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    src, dst = Path(src), Path(dst)
    manifest = load_manifest(src)
    if shard_paths(dst):
        raise DatasetError(f"{dst}: already holds a dataset; choose an empty --out")
    schema = schema_for(codec, rejected=manifest.kind == "rejected")
    shards, rows, before = [], 0, 0
    for path in shard_paths(src):
        table = encode_table(pq.read_table(path), codec)
        shards.append(write_shard(dst, table, schema))
        rows += table.num_rows
        before += path.stat().st_size
    if not shards:  # an empty dataset still gets one (empty) shard with the new schema
        shards.append(write_shard(dst, schema.empty_table(), schema))
    packed = manifest.model_copy(
        update={
            "schema_version": CODECS[codec],
            "codec": codec,
            "dataset_id": new_dataset_id(),
            "shards": shards,
            "parents": [parent_ref(src)],
            "params": {**manifest.params, "codec": codec},
        }
    )
    save_manifest(dst, packed)
    after = sum((dst / s.file).stat().st_size for s in shards)
    return PackResult(dst, codec, rows, before, after)
