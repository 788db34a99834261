"""`distill pack`: rewrite a dataset directory with another top-k codec, batch by batch.

Every source shard is checked against the source manifest's sha256 before anything is
written. Rows then stream through one decoded batch at a time (`store.shard_batches`) into a
`DatasetWriter` that ends a shard wherever the source's ends, so memory is bounded by one
shard, not the dataset, and the shards are byte-identical to a whole-shard conversion. The same
command run again on its own output (after a kill, or after it finished) clears it and
redoes the job (`distill.rerun`); the output, manifest included, is byte-identical to an
uninterrupted run's: its dataset id is derived from the job, `created_at` is the source's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from distill.codec.topk import encode_table
from distill.dataset_card import write_card
from distill.engine import LOCAL, EngineConfig, require_ray
from distill.locking import locks_output
from distill.rerun import claim_output, derived_dataset_id, job_key
from distill.schemas import CODECS, Manifest, schema_for
from distill.store import (
    DEFAULT_BATCH_ROWS,
    DatasetError,
    DatasetWriter,
    load_manifest,
    parent_ref,
    shard_batches,
    verify_shards,
)

# Rows decoded and re-encoded at a time: memory holds this batch in both layouts, plus the
# output rows of the shard being written.
PACK_BATCH_ROWS = DEFAULT_BATCH_ROWS


@dataclass
class PackResult:
    out_dir: Path
    codec: str
    rows: int
    bytes_before: int  # sum of the source's shard files
    bytes_after: int


def recode_shards(
    src: Path,
    manifest: Manifest,
    dst: Path,
    codec: str,
    verified: bool,
    batch_rows: int = PACK_BATCH_ROWS,
) -> DatasetWriter:
    """A writer into `dst` holding every row of `src` re-encoded to `codec`, a batch at a
    time, with the source's shard boundaries kept (`end_shard`), so the same rows give the
    same shards; the caller closes it with its manifest. `verified`: the shards were checked
    against the manifest already (otherwise each is checked as it is read)."""
    schema = schema_for(codec, rejected=manifest.kind == "rejected")
    writer = DatasetWriter(dst, schema, rows_per_shard=sys.maxsize)
    for shard in manifest.shards:
        sha256 = None if verified else shard.sha256
        for batch in shard_batches(src / shard.file, sha256, batch_size=batch_rows):
            writer.write(encode_table(pa.Table.from_batches([batch]), codec))
        writer.end_shard()
    return writer


@locks_output("dst")
def pack_dataset(
    src: Path, dst: Path, codec: str = "packed", engine: EngineConfig = LOCAL
) -> PackResult:
    """Write `src`'s rows to the new dataset `dst` with `codec` ("packed" or "plain").

    Same rows in the same order and the same shard boundaries; only the top-k columns
    change. `dst`'s manifest names `src` as its parent. Refuses a `dst` that holds shards.
    `engine`: this process, or one Ray task per shard (`distill.codec.ray_pack`), with the
    same bytes written.
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    if engine.is_ray:
        require_ray()  # before anything is read: a one-line error naming the extra
    src, dst = Path(src), Path(dst)
    manifest = load_manifest(src)
    if dst.resolve() == src.resolve():
        raise DatasetError(f"{dst}: the output must differ from the input dataset")
    verify_shards(src, manifest)  # fail before writing, not halfway; cheap next to encoding
    key = job_key("pack", src, {"codec": codec})
    claim_output(dst, "pack", key, [dst])
    target = manifest.model_copy(
        update={
            "schema_version": CODECS[codec],
            "codec": codec,
            "dataset_id": derived_dataset_id(key, manifest.kind),
            "parents": [parent_ref(src, dst)],
            "params": {**manifest.params, "codec": codec},
        }
    )
    if engine.is_ray and manifest.shards:
        from distill.codec.ray_pack import recode_on_ray

        # `target` still lists the source's shards: one task each, then replaced.
        packed = recode_on_ray(src, target, dst, codec, engine, PACK_BATCH_ROWS)
    else:
        packed = recode_shards(src, manifest, dst, codec, verified=True).close(target)
    write_card(dst)
    before = sum((src / s.file).stat().st_size for s in manifest.shards)
    after = sum((dst / s.file).stat().st_size for s in packed.shards)
    return PackResult(dst, codec, packed.counts["rows"], before, after)
