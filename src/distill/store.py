"""Datasets on disk: a directory of Parquet shards plus `manifest.json`.

    DIR/
      manifest.json          # schemas.Manifest
      data/part-00000.parquet
      data/part-00001.parquet

Every file is written to a temporary name in the same directory, fsynced and then
renamed, so a crash never leaves a half-written shard or manifest; a write that fails
(a full disk: ENOSPC, or any OSError) removes its temporary and raises `OutputWriteError`.
The shards on disk are the truth for their writer: after a crash `gen` rebuilds the
manifest from them (see `scan_shards`). Readers trust only what the manifest lists:
`read_table` checks every shard's sha256 while it reads it (one pass over the bytes) and
refuses a missing, extra, truncated or changed shard, naming the file and what to do.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distill.schemas import (
    LATEST_SCHEMA_VERSION,
    Manifest,
    ParentRef,
    ShardInfo,
    codec_of,
    schema_for,
)

MANIFEST_NAME = "manifest.json"
DATA_DIR = "data"
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


class DatasetError(ValueError):
    """A dataset directory that can't be read as one: names the path and what is wrong."""


class OutputWriteError(DatasetError):
    """A write failed (disk full, I/O error); its temporary was removed, nothing partial left."""


def _write_failed(path: Path, tmp: Path, exc: OSError) -> OutputWriteError:
    tmp.unlink(missing_ok=True)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputWriteError(
        f"{path}: write failed ({reason}); no partial file was left. Free some space (or fix "
        "the error) and re-run the same command: it resumes"
    )


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        raise _write_failed(path, tmp, exc) from exc


def remove_stale_temporaries(dataset_dir: Path) -> int:
    """Delete temporaries a crashed writer left behind; returns how many."""
    removed = 0
    for folder in (dataset_dir, dataset_dir / DATA_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
                removed += 1
    return removed


def shard_paths(dataset_dir: Path) -> list[Path]:
    data = Path(dataset_dir) / DATA_DIR
    if not data.is_dir():
        return []
    return sorted(p for p in data.iterdir() if _SHARD_RE.match(p.name))


def next_shard_path(dataset_dir: Path) -> Path:
    existing = [int(_SHARD_RE.match(p.name).group(1)) for p in shard_paths(dataset_dir)]  # type: ignore[union-attr]
    index = max(existing, default=-1) + 1
    return Path(dataset_dir) / DATA_DIR / f"part-{index:05d}.parquet"


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


def write_shard(dataset_dir: Path, table: pa.Table, schema: pa.Schema) -> ShardInfo:
    """Write one shard atomically with the explicit schema; never infers types."""
    if not table.schema.equals(schema, check_metadata=False):
        table = table.cast(schema)
    path = next_shard_path(dataset_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary(path)
    try:
        pq.write_table(
            table.replace_schema_metadata(schema.metadata), tmp, **parquet_options(schema)
        )
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:  # pyarrow's I/O errors are OSErrors too
        raise _write_failed(path, tmp, exc) from exc
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


def parent_ref(dataset_dir: Path) -> ParentRef:
    manifest = load_manifest(dataset_dir)
    return ParentRef(
        path=str(Path(dataset_dir).resolve()),
        dataset_id=manifest.dataset_id,
        manifest_sha256=sha256_file(Path(dataset_dir) / MANIFEST_NAME),
    )


def damaged_shard(path: Path, detail: str) -> DatasetError:
    dataset_dir = path.parent.parent
    return DatasetError(
        f"{path}: {detail}. Restore the file, or re-run the command that wrote {dataset_dir} "
        "(for gen or score output: delete the file first, the rerun regenerates its rows)"
    )


def _check_listing(dataset_dir: Path, manifest: Manifest) -> None:
    listed = {shard.file for shard in manifest.shards}
    for shard in manifest.shards:
        if not (dataset_dir / shard.file).is_file():
            raise damaged_shard(dataset_dir / shard.file, "listed in manifest.json but missing")
    for path in shard_paths(dataset_dir):
        if str(path.relative_to(dataset_dir)) not in listed:
            raise DatasetError(
                f"{path}: not listed in {dataset_dir / MANIFEST_NAME}: the run writing this "
                "dataset has not finished (or was killed); re-run the same command to finish it"
            )


def _sha256_mismatch(path: Path, size: int, has_footer: bool) -> DatasetError:
    if not has_footer:
        hint = f"truncated or cut: {size} bytes with no Parquet footer"
    else:
        hint = "its bytes changed, e.g. a flipped bit"
    return damaged_shard(path, f"sha256 differs from manifest.json ({hint})")


def check_shard_bytes(path: Path, data: bytes, sha256: str) -> None:
    """Refuse `data` (the bytes of the shard at `path`) unless its sha256 is `sha256`."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise _sha256_mismatch(path, len(data), data.endswith(b"PAR1"))


def read_shard(path: Path, sha256: str | None, columns: list[str] | None = None) -> pa.Table:
    """One shard, its bytes read once: hashed against `sha256` (None: not checked), then parsed."""
    data = path.read_bytes()
    if sha256 is not None:
        check_shard_bytes(path, data, sha256)
    try:
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise damaged_shard(path, f"unreadable Parquet ({exc})") from exc


def verify_shards(dataset_dir: Path, manifest: Manifest) -> None:
    """Every listed shard present with its sha256, and no shard the manifest doesn't list."""
    dataset_dir = Path(dataset_dir)
    _check_listing(dataset_dir, manifest)
    for shard in manifest.shards:
        path = dataset_dir / shard.file
        # Streamed: a check that parses nothing need not hold the shard in memory.
        if sha256_file(path) != shard.sha256:
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(size - 4, 0))
                raise _sha256_mismatch(path, size, fh.read() == b"PAR1")


def read_table(
    dataset_dir: Path, columns: list[str] | None = None, verify: bool = True
) -> pa.Table:
    """All rows of a dataset, in shard order, with the schema they were written with.

    `verify` (default): only the manifest's shards, each checked against its sha256 as it
    is read (see `verify_shards`). `verify=False` reads whatever shards are on disk, for a
    writer resuming its own unfinished output.
    """
    dataset_dir = Path(dataset_dir)
    if verify or not shard_paths(dataset_dir):
        if not (dataset_dir / MANIFEST_NAME).is_file() and not shard_paths(dataset_dir):
            raise DatasetError(f"{dataset_dir}: not a distill dataset (no manifest, no shards)")
        manifest = load_manifest(dataset_dir)
        _check_listing(dataset_dir, manifest)
        if not manifest.shards:
            empty = schema_for(manifest, rejected=manifest.kind == "rejected").empty_table()
            return empty.select(columns) if columns else empty
        tables = [
            read_shard(dataset_dir / shard.file, shard.sha256, columns) for shard in manifest.shards
        ]
    else:
        tables = [read_shard(path, None, columns) for path in shard_paths(dataset_dir)]
    return pa.concat_tables(tables)


def iter_batches(
    dataset_dir: Path, batch_size: int = 1024, columns: list[str] | None = None
) -> Iterator[pa.RecordBatch]:
    """Batches of `read_table`'s rows (verified), one shard in memory at a time."""
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir)
    _check_listing(dataset_dir, manifest)
    for shard in manifest.shards:
        yield from read_shard(dataset_dir / shard.file, shard.sha256, columns).to_batches(
            max_chunksize=batch_size
        )


def write_json(path: Path, payload: object) -> None:
    atomic_write_bytes(Path(path), json.dumps(payload, indent=2, default=str).encode() + b"\n")


def new_dataset_id() -> str:
    return uuid.uuid4().hex


def write_dataset(
    dataset_dir: Path,
    table: pa.Table,
    schema: pa.Schema,
    manifest: Manifest,
    rows_per_shard: int = 4096,
) -> Manifest:
    """Write a whole table as a fresh dataset (curate's kept/rejected outputs).

    Refuses a directory that already holds shards: outputs are never silently mixed.
    `manifest.shards` and `counts["rows"]` are filled in here.
    """
    dataset_dir = Path(dataset_dir)
    if shard_paths(dataset_dir):
        raise DatasetError(f"{dataset_dir}: already holds a dataset; choose an empty --out")
    dataset_dir.mkdir(parents=True, exist_ok=True)
    shards = []
    for start in range(0, max(table.num_rows, 1), rows_per_shard):
        chunk = table.slice(start, rows_per_shard)
        if chunk.num_rows or not shards:
            shards.append(write_shard(dataset_dir, chunk, schema))
    manifest = manifest.model_copy(
        update={"shards": shards, "counts": {**manifest.counts, "rows": table.num_rows}}
    )
    save_manifest(dataset_dir, manifest)
    return manifest
