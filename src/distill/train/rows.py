"""The rows a run trains on: streamed once into an Arrow file in the run dir, then memory-mapped.

`spool_rows` reads the dataset's trainable columns a batch at a time (`iter_batches`: one
shard's bytes and one decoded batch in memory), drops rows with an empty response, gathers
the student check's `RowIdStats` on the way and appends each batch to `OUT/.rows.arrow`, an
uncompressed Arrow IPC file (written to a temporary, then renamed). `open_rows` maps it with
`pa.memory_map`: the table's buffers are the file's pages in the page cache, read on first
touch, not copies in the process's heap, so no whole-dataset table is ever in memory.
`OUT/.rows.json`, written after the file, names the source manifest's sha256 and the stats:
an unfinished run resumed in the same `--out` reuses the file when its dataset is unchanged
(its shards' sha256 are still checked, streamed).
The runner removes both when the run ends, unless it failed with `save_steps` set (its
rerun resumes and reuses the file); on disk the file costs the trainable columns'
uncompressed Arrow size, several times their Parquet size.

How rows are shuffled: the train split is an int64 array of row numbers into this table, and
the Trainer's dataset maps item i to row `train_rows[i]`. The Trainer's own seeded sampler
permutes all items, so every epoch is a full uniform shuffle of the training rows, the same
order the former in-memory table gave (rows in file order, which is the dataset's order).
It costs 8 bytes per training row for the index plus the sampler's permutation, and a random
read of each batch's rows (`take_rows`): from the page cache when it holds the file,
otherwise a few disk pages a row. The pages a process has touched count in its RSS as file
pages (RssFile); they are clean page cache, which the kernel reclaims under pressure.
"""

from __future__ import annotations

import json
import mmap
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from distill.schemas import PACKED_TOPK_COLUMNS, PLAIN_TOPK_COLUMNS, Manifest
from distill.store import (
    MANIFEST_NAME,
    DatasetError,
    iter_batches,
    sha256_file,
    verify_shards,
    write_json,
)
from distill.train.student_check import RowIdStats, row_id_stats

BASE_COLUMNS = ["record_id", "prompt_id", "prompt_token_ids", "token_ids"]
ROWS_FILE = ".rows.arrow"
ROWS_META = ".rows.json"
# The rows re-tokenised for a student on another tokenizer (`cross_rows`), removed with the spool.
STUDENT_ROWS_FILE = ".rows.student.arrow"
SPOOL_BATCH_ROWS = 1024


# The spools mapped by `open_rows`, for `release_mapped_pages`.
_OPEN_MAPS: weakref.WeakSet[mmap.mmap] = weakref.WeakSet()


class SpooledRows(BaseModel):
    """`OUT/.rows.arrow` and what `.rows.json` says of it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path
    source_manifest_sha256: str
    columns: list[str]
    stats: RowIdStats


def trainable_columns(manifest: Manifest) -> list[str]:
    """The ids plus the top-k columns of the dataset's codec."""
    topk = PACKED_TOPK_COLUMNS if manifest.codec == "packed" else PLAIN_TOPK_COLUMNS
    return [*BASE_COLUMNS, *topk]


def _reusable(out_dir: Path, source_sha256: str, columns: list[str]) -> SpooledRows | None:
    meta_path, path = out_dir / ROWS_META, out_dir / ROWS_FILE
    if not (meta_path.is_file() and path.is_file()):
        return None
    try:
        spooled = SpooledRows.model_validate({**json.loads(meta_path.read_text()), "path": path})
    except ValueError:
        return None  # a file from another version, or cut short: spool again
    if spooled.source_manifest_sha256 != source_sha256 or spooled.columns != columns:
        return None
    return spooled


def spool_rows(
    dataset_dir: Path, manifest: Manifest, out_dir: Path, batch_rows: int | None = None
) -> SpooledRows:
    """The dataset's rows with a non-empty response, in `out_dir/.rows.arrow` (see the module
    docstring), `batch_rows` (default `SPOOL_BATCH_ROWS`) to a chunk; an existing file of the
    same dataset is reused."""
    source_sha256 = sha256_file(Path(dataset_dir) / MANIFEST_NAME)
    columns = trainable_columns(manifest)
    found = _reusable(out_dir, source_sha256, columns)
    if found is not None:
        # A copy of verified bytes, but a damaged source still stops the run, as every reader.
        verify_shards(dataset_dir, manifest)
        return found
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / ROWS_META).unlink(missing_ok=True)
    path = out_dir / ROWS_FILE
    stats = RowIdStats()

    def nonempty_rows() -> Iterator[pa.Table]:
        nonlocal stats
        batches = iter_batches(
            dataset_dir, batch_size=batch_rows or SPOOL_BATCH_ROWS, columns=columns
        )
        for batch in batches:
            # A response with no token has nothing to learn from (and TRL would drop it,
            # changing the order).
            batch = batch.filter(pc.greater(pc.list_value_length(batch.column("token_ids")), 0))
            table = pa.Table.from_batches([batch])
            if table.num_rows:
                stats = stats.merged(row_id_stats(table))
            yield table

    if not write_arrow_file(path, nonempty_rows()):
        raise DatasetError(f"{dataset_dir}: no rows with a non-empty response to train on")
    spooled = SpooledRows(
        path=path, source_manifest_sha256=source_sha256, columns=columns, stats=stats
    )
    write_json(out_dir / ROWS_META, spooled.model_dump(mode="json", exclude={"path"}))
    return spooled


def write_arrow_file(path: Path, tables: Iterable[pa.Table]) -> bool:
    """`tables`, in order, as the uncompressed Arrow file `path`: written under a temporary
    name and renamed, so a kill never leaves half a file to reuse. Tables without rows are
    skipped; False (and nothing at `path`) when no table had any."""
    tmp = path.with_name(f"{path.name}.tmp")
    writer: pa.ipc.RecordBatchFileWriter | None = None
    try:
        for table in tables:
            if table.num_rows == 0:
                continue
            writer = writer or pa.ipc.new_file(str(tmp), table.schema)
            writer.write_table(table)
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        return False
    tmp.replace(path)
    return True


def remove_spool(out_dir: Path) -> None:
    """Delete `.rows.json` first (without it the file is never reused), then the file."""
    for name in (
        ROWS_META,
        ROWS_FILE,
        f"{ROWS_FILE}.tmp",
        STUDENT_ROWS_FILE,
        f"{STUDENT_ROWS_FILE}.tmp",
    ):
        (out_dir / name).unlink(missing_ok=True)


@contextmanager
def spooled_rows(
    dataset_dir: Path, manifest: Manifest, out_dir: Path, *, keep_on_error: bool
) -> Iterator[SpooledRows]:
    """`spool_rows` for the length of a run: removed when the block ends, except when it
    raises and `keep_on_error` (a run with checkpoints, whose resume reuses the file)."""
    finished = False
    try:
        yield spool_rows(dataset_dir, manifest, out_dir)
        finished = True
    finally:
        if finished or not keep_on_error:
            remove_spool(out_dir)


def open_rows(path: Path) -> pa.Table:
    """The spooled rows, memory-mapped: one chunk per spooled batch, nothing copied.

    Mapped with readahead off (`MADV_RANDOM`): training and the held-out set touch a few
    scattered rows at a time, and the kernel's readahead around each fault would bring in
    whole neighbourhoods of the file, which count in the process's resident set (page
    cache, reclaimable, but growing with how far apart the rows lie in a large file).
    `pa.memory_map` offers no madvise, so the map is Python's, lent to Arrow zero-copy.
    `take_rows` hands the pages it touched back after each take (`release_mapped_pages`).
    """
    with Path(path).open("rb") as fh:
        mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(mapped, "madvise"):
        mapped.madvise(mmap.MADV_RANDOM)
    _OPEN_MAPS.add(mapped)
    # The buffer keeps the map alive for as long as the table's columns point into it.
    return pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapped))).read_all()


def release_mapped_pages() -> None:
    """Unmap from this process the spool pages it has touched (`MADV_DONTNEED`).

    The file stays mapped and in the page cache: a later read faults the page back in from
    memory. Without this, every page a take ever touched (Arrow's kernels read more than
    the taken rows: offsets, bitmaps, the kernel's fault-around) would stay in the resident
    set, which then grows with the number of rows a run visits, i.e. with the dataset.
    """
    for mapped in list(_OPEN_MAPS):
        if hasattr(mapped, "madvise") and not mapped.closed:
            mapped.madvise(mmap.MADV_DONTNEED)


def take_rows(table: pa.Table, rows: np.ndarray | list[int]) -> pa.Table:
    """`table.take(rows)` that copies only the taken rows.

    Arrow's `take` on a table of several chunks concatenates each column first: on a
    memory-mapped table that would copy the whole dataset into memory for a batch of rows.
    Here each chunk serves its own rows, and the pieces are put back in the asked order.
    """
    rows = np.asarray(rows, dtype=np.int64)
    batches = table.to_batches()
    if len(batches) <= 1 or rows.size == 0:
        return table.slice(0, 0).combine_chunks() if rows.size == 0 else table.take(rows)
    starts = np.cumsum([0, *(b.num_rows for b in batches)])
    if rows.size and (rows.min() < 0 or rows.max() >= starts[-1]):
        bad = rows[(rows < 0) | (rows >= starts[-1])]
        raise IndexError(f"row {bad[0]} is out of range: the table has {starts[-1]} rows")
    chunk = np.searchsorted(starts, rows, side="right") - 1
    by_chunk = np.argsort(chunk, kind="stable")
    sorted_rows, sorted_chunks = rows[by_chunk], chunk[by_chunk]
    present, first = np.unique(sorted_chunks, return_index=True)
    ends = [*first[1:], sorted_rows.size]
    pieces = []
    for c, a, b in zip(present, first, ends, strict=True):
        pieces.append(batches[c].take(pa.array(sorted_rows[a:b] - starts[c])))
        release_mapped_pages()  # a chunk at a time: the peak is one chunk's pages
    gathered = pa.Table.from_batches(pieces, schema=table.schema)
    back = np.empty_like(by_chunk)
    back[by_chunk] = np.arange(by_chunk.size)
    return gathered.take(pa.array(back)).combine_chunks()
