"""Reading a dataset back, verified: whole (`read_table`) or a batch at a time (`iter_batches`).

Readers trust only what the manifest lists: every shard's sha256 is checked while it is
read (one pass over the bytes), and a missing, extra, truncated or changed shard is refused,
naming the file and what to do. `iter_batches` holds one shard's bytes and one decoded
batch at a time, so a reader's memory is bounded by the shard size, not the dataset's.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from distill.schemas import Manifest, schema_for
from distill.store.files import DatasetError, sha256_file
from distill.store.shards import MANIFEST_NAME, load_manifest, shard_paths

DEFAULT_BATCH_ROWS = 1024


def damaged_shard(path: Path, detail: str) -> DatasetError:
    dataset_dir = path.parent.parent
    return DatasetError(
        f"{path}: {detail}. Restore the file, or re-run the command that wrote {dataset_dir} "
        "(for gen or score output: delete the file first, the rerun regenerates its rows)"
    )


def check_listing(dataset_dir: Path, manifest: Manifest) -> None:
    """Every shard the manifest lists is there, and no shard it doesn't list."""
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


def _shard_bytes(path: Path, sha256: str | None) -> bytes:
    data = path.read_bytes()
    if sha256 is not None:
        check_shard_bytes(path, data, sha256)
    return data


def read_shard(path: Path, sha256: str | None, columns: list[str] | None = None) -> pa.Table:
    """One shard, its bytes read once: hashed against `sha256` (None: not checked), then parsed."""
    data = _shard_bytes(path, sha256)
    try:
        return pq.read_table(pa.BufferReader(data), columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise damaged_shard(path, f"unreadable Parquet ({exc})") from exc


def shard_batches(
    path: Path, sha256: str | None, columns: list[str] | None = None, batch_size: int = 1024
) -> Iterator[pa.RecordBatch]:
    """One shard's rows a batch at a time: its bytes hashed once, then decoded a batch at a
    time (the decoded shard is never whole in memory)."""
    data = _shard_bytes(path, sha256)
    try:
        yield from pq.ParquetFile(pa.BufferReader(data)).iter_batches(
            batch_size=batch_size, columns=columns
        )
    except (pa.ArrowException, OSError) as exc:
        raise damaged_shard(path, f"unreadable Parquet ({exc})") from exc


def verify_shards(dataset_dir: Path, manifest: Manifest) -> None:
    """Every listed shard present with its sha256, and no shard the manifest doesn't list."""
    dataset_dir = Path(dataset_dir)
    check_listing(dataset_dir, manifest)
    for shard in manifest.shards:
        path = dataset_dir / shard.file
        # Streamed: a check that parses nothing need not hold the shard in memory.
        if sha256_file(path) != shard.sha256:
            with path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                fh.seek(max(size - 4, 0))
                raise _sha256_mismatch(path, size, fh.read() == b"PAR1")


def _listed(
    dataset_dir: Path, verify: bool
) -> tuple[Manifest | None, list[tuple[Path, str | None]]]:
    """(manifest, [(shard path, sha256 to check)]): the manifest's shards, checked for
    presence; with `verify=False`, whatever shards are on disk, unchecked."""
    if not verify and shard_paths(dataset_dir):
        return None, [(path, None) for path in shard_paths(dataset_dir)]
    if not (dataset_dir / MANIFEST_NAME).is_file() and not shard_paths(dataset_dir):
        raise DatasetError(f"{dataset_dir}: not a distill dataset (no manifest, no shards)")
    manifest = load_manifest(dataset_dir)
    check_listing(dataset_dir, manifest)
    return manifest, [(dataset_dir / s.file, s.sha256) for s in manifest.shards]


def read_table(
    dataset_dir: Path, columns: list[str] | None = None, verify: bool = True
) -> pa.Table:
    """All rows of a dataset, in shard order, with the schema they were written with.

    `verify` (default): only the manifest's shards, each checked against its sha256 as it
    is read (see `verify_shards`). `verify=False` reads whatever shards are on disk, for a
    writer resuming its own unfinished output. Holds the whole dataset in memory: stages
    that must scale read with `iter_batches` instead.
    """
    dataset_dir = Path(dataset_dir)
    manifest, shards = _listed(dataset_dir, verify)
    if not shards:
        assert manifest is not None
        empty = schema_for(manifest, rejected=manifest.kind == "rejected").empty_table()
        return empty.select(columns) if columns else empty
    return pa.concat_tables([read_shard(path, sha, columns) for path, sha in shards])


def iter_batches(
    dataset_dir: Path,
    batch_size: int = DEFAULT_BATCH_ROWS,
    columns: list[str] | None = None,
    verify: bool = True,
) -> Iterator[pa.RecordBatch]:
    """`read_table`'s rows (same order, same checks), `batch_size` rows at a time, with one
    shard's bytes and one decoded batch in memory at a time. A dataset with no rows yields
    nothing (its schema is `schema_for(manifest)`)."""
    dataset_dir = Path(dataset_dir)
    for path, sha in _listed(dataset_dir, verify)[1]:
        yield from shard_batches(path, sha, columns, batch_size)
