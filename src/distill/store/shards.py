"""A dataset's files: shards named `data/part-NNNNN.parquet` and its `manifest.json`.

    DIR/
      manifest.json          # schemas.Manifest
      data/part-00000.parquet
      data/part-00001.parquet

The shards on disk are the truth for their writer: after a crash `gen` rebuilds the
manifest from them (see `scan_shards`). Readers trust only what the manifest lists
(`distill.store.read`).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distill.schemas import LATEST_SCHEMA_VERSION, Manifest, ParentRef, ShardInfo, codec_of
from distill.store.files import (
    DATA_DIR,
    DatasetError,
    atomic_write_bytes,
    fsync_dir,
    sha256_file,
    temporary,
    write_failed,
)

MANIFEST_NAME = "manifest.json"
_SHARD_RE = re.compile(r"^part-(\d{5,})\.parquet$")

# Parquet settings of packed (schema 2) shards, measured on SmolLM2 top-20 (bench/codec_bench.py,
# docs/benchmarks.md): dictionary pages only help the repetitive string/int columns; on the
# packed blobs and the float lists they cost 2.7 B/token. BYTE_STREAM_SPLIT made the float
# lists 1-3 % larger, so they stay PLAIN. zstd 15 is 2.6 % smaller than level 3 at 10x the
# write time (still ~250k tokens/s on one core); 19 saves 3.6 % more at 3x level 15's time.
PACKED_ZSTD_LEVEL = 15
_NO_DICTIONARY = {
    "topk_ids_packed",
    "topk_logprob_codes",
    "topk_ref_logprob",
    "tail_mass",
    "sampled_logprob",
}


def shard_paths(dataset_dir: Path) -> list[Path]:
    data = Path(dataset_dir) / DATA_DIR
    if not data.is_dir():
        return []
    # By number, not name: past part-99999 the names grow a digit and would sort wrong.
    found = ((m, p) for p in data.iterdir() if (m := _SHARD_RE.match(p.name)))
    return [p for _, p in sorted(found, key=lambda mp: (int(mp[0].group(1)), mp[1].name))]


def shard_path(dataset_dir: Path, index: int) -> Path:
    return Path(dataset_dir) / DATA_DIR / f"part-{index:05d}.parquet"


def next_shard_path(dataset_dir: Path) -> Path:
    return shard_path(dataset_dir, next_shard_number(dataset_dir))


def next_shard_number(dataset_dir: Path) -> int:
    """The number after every shard on disk (0 for none)."""
    existing = [int(_SHARD_RE.match(p.name).group(1)) for p in shard_paths(dataset_dir)]  # type: ignore[union-attr]
    return max(existing, default=-1) + 1


def shard_number(file: str) -> int:
    """The number in a shard's name (`data/part-00012.parquet` -> 12), -1 for another name."""
    match = _SHARD_RE.match(Path(file).name)
    return int(match.group(1)) if match else -1


def parquet_options(schema: pa.Schema) -> dict:
    """`pq.write_table` settings for a shard with this schema (see PACKED_ZSTD_LEVEL).

    Plain (schema 1) shards keep the writer's defaults with zstd, as they always had.
    """
    if codec_of(schema) == "plain":
        return {"compression": "zstd"}
    return {
        "compression": "zstd",
        "compression_level": PACKED_ZSTD_LEVEL,
        "use_dictionary": [n for n in schema.names if n not in _NO_DICTIONARY],
    }


def write_shard(
    dataset_dir: Path, table: pa.Table, schema: pa.Schema, index: int | None = None
) -> ShardInfo:
    """Write one shard atomically with the explicit schema; never infers types.

    `index`: the shard's number. Unset, the next after those on disk (one writer); workers
    writing into one dataset at once each pass numbers of their own, so names never clash.
    """
    if not table.schema.equals(schema, check_metadata=False):
        table = table.cast(schema)
    path = next_shard_path(dataset_dir) if index is None else shard_path(dataset_dir, index)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        pq.write_table(
            table.replace_schema_metadata(schema.metadata), tmp, **parquet_options(schema)
        )
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:  # pyarrow's I/O errors are OSErrors too
        raise write_failed(path, tmp, exc) from exc
    return ShardInfo(
        file=str(path.relative_to(dataset_dir)), rows=table.num_rows, sha256=sha256_file(path)
    )


def scan_shards(dataset_dir: Path) -> list[ShardInfo]:
    """Describe the shards actually on disk (used to rebuild a manifest after a crash)."""
    infos = []
    for path in shard_paths(dataset_dir):
        rows = pq.ParquetFile(path).metadata.num_rows
        infos.append(
            ShardInfo(file=str(path.relative_to(dataset_dir)), rows=rows, sha256=sha256_file(path))
        )
    return infos


def save_manifest(dataset_dir: Path, manifest: Manifest) -> Path:
    path = Path(dataset_dir) / MANIFEST_NAME
    atomic_write_bytes(path, manifest.model_dump_json(indent=2).encode() + b"\n")
    return path


def load_manifest(dataset_dir: Path) -> Manifest:
    path = Path(dataset_dir) / MANIFEST_NAME
    if not path.is_file():
        raise DatasetError(f"{dataset_dir}: no {MANIFEST_NAME}; is this a distill dataset?")
    try:
        manifest = Manifest.model_validate_json(path.read_text())
    except ValueError as exc:
        raise DatasetError(f"{path}: invalid manifest: {exc}") from exc
    if manifest.schema_version > LATEST_SCHEMA_VERSION:
        raise DatasetError(
            f"{path}: schema_version {manifest.schema_version} is newer than this distill "
            f"understands ({LATEST_SCHEMA_VERSION}); upgrade distill"
        )
    return manifest


def parent_ref(dataset_dir: Path, child_dir: Path | None = None) -> ParentRef:
    """How a child dataset (in `child_dir`, when known) names its parent `dataset_dir`."""
    manifest = load_manifest(dataset_dir)
    parent = Path(dataset_dir).resolve()
    relative = os.path.relpath(parent, Path(child_dir).resolve()) if child_dir else None
    return ParentRef(
        path=str(parent),
        dataset_id=manifest.dataset_id,
        manifest_sha256=sha256_file(Path(dataset_dir) / MANIFEST_NAME),
        relative_path=relative,
    )


def new_dataset_id() -> str:
    return uuid.uuid4().hex
