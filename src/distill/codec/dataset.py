"""`distill pack`: rewrite a dataset directory with another top-k codec, shard by shard.

Each source shard is checked against the source manifest's sha256 as it is read. The same
command run again on its own output (after a kill, or after it finished) clears it and
redoes the job (`distill.rerun`); the output, manifest included, is byte-identical to an
uninterrupted run's: its dataset id is derived from the job, `created_at` is the source's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distill.codec.topk import encode_table
from distill.dataset_card import write_card
from distill.locking import locks_output
from distill.rerun import claim_output, derived_dataset_id, job_key
from distill.schemas import CODECS, schema_for
from distill.store import (
    DatasetError,
    load_manifest,
    parent_ref,
    read_shard,
    save_manifest,
    verify_shards,
    write_shard,
)


@dataclass
class PackResult:
    out_dir: Path
    codec: str
    rows: int
    bytes_before: int  # sum of the source's shard files
    bytes_after: int


@locks_output("dst")
def pack_dataset(src: Path, dst: Path, codec: str = "packed") -> PackResult:
    """Write `src`'s rows to the new dataset `dst` with `codec` ("packed" or "plain").

    Same rows in the same order and the same shard boundaries; only the top-k columns
    change. `dst`'s manifest names `src` as its parent. Refuses a `dst` that holds shards.
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    src, dst = Path(src), Path(dst)
    manifest = load_manifest(src)
    if dst.resolve() == src.resolve():
        raise DatasetError(f"{dst}: the output must differ from the input dataset")
    verify_shards(src, manifest)  # fail before writing, not halfway; cheap next to encoding
    key = job_key("pack", src, {"codec": codec})
    claim_output(dst, "pack", key, [dst])
    schema = schema_for(codec, rejected=manifest.kind == "rejected")
    shards, rows, before = [], 0, 0
    for shard in manifest.shards:
        path = src / shard.file
        table = encode_table(read_shard(path, None), codec)  # verified above
        shards.append(write_shard(dst, table, schema))
        rows += table.num_rows
        before += path.stat().st_size
    if not shards:  # an empty dataset still gets one (empty) shard with the new schema
        shards.append(write_shard(dst, schema.empty_table(), schema))
    packed = manifest.model_copy(
        update={
            "schema_version": CODECS[codec],
            "codec": codec,
            "dataset_id": derived_dataset_id(key, manifest.kind),
            "shards": shards,
            "parents": [parent_ref(src, dst)],
            "params": {**manifest.params, "codec": codec},
        }
    )
    save_manifest(dst, packed)
    write_card(dst)
    after = sum((dst / s.file).stat().st_size for s in shards)
    return PackResult(dst, codec, rows, before, after)
