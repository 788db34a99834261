"""What a prompt source can be besides one file: Parquet parts, a Hub snapshot, an Arrow table.

- a Hub-style snapshot folder (`README.md` + `data/train-00000-of-00002.parquet`, ...) or any
  folder of `*.parquet` files, and a glob (`'prompts/*.parquet'`): read as one Parquet source,
  the parts in name order, rows numbered 1.. across them. A folder holding several splits
  (`train-*`, `test-*`) is refused: reading them together would mix a test set into the
  data; a glob names the split (`'DIR/data/train-*.parquet'`).
- a folder written by `datasets.Dataset.save_to_disk` (`state.json` beside Arrow files):
  still format "hf", as before.
- in memory (the Python API): a `pyarrow.Table` or a `datasets.Dataset` (format "arrow").

Every one is read a batch of `READ_BATCH_ROWS` rows at a time, so memory does not grow with
the source.
"""

from __future__ import annotations

import glob
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union

import pyarrow as pa

from distill.input_rows import PromptError

if TYPE_CHECKING:
    import datasets

PromptSource = Union[Path, str, pa.Table, "datasets.Dataset"]
_GLOB_CHARS = re.compile(r"[*?\[]")
# The split names the Hub recognises in a file or folder name (`train-00000-of-00002.parquet`,
# `test.parquet`, `validation/0000.parquet`).
SPLITS = ("train", "test", "validation", "valid", "dev", "eval")
_SPLIT_NAME = re.compile(rf"(?:^|[-_./])({'|'.join(SPLITS)})(?=$|[-_./])")


def in_memory(source: Any) -> bool:
    """A table or a `datasets.Dataset` rather than a path."""
    return not isinstance(source, str | Path)


def source_name(source: PromptSource) -> str:
    """How records and messages name the source: its path, or `<pyarrow.Table>`."""
    if in_memory(source):
        kind = type(source)
        return f"<{kind.__module__.split('.')[0]}.{kind.__name__}>"
    return str(source)


def _is_saved_dataset(folder: Path) -> bool:
    return (folder / "state.json").is_file() or (folder / "dataset_dict.json").is_file()


def _split_of(path: Path, root: Path) -> str | None:
    match = _SPLIT_NAME.search(path.relative_to(root).as_posix())
    return match.group(1) if match else None


def parquet_parts(source: Path | str) -> list[Path] | None:
    """The Parquet files a folder or glob stands for (None: a single file or a saved
    `datasets` folder, read as before)."""
    text = str(source)
    if not Path(text).exists() and _GLOB_CHARS.search(text):
        parts = sorted(Path(p) for p in glob.glob(text, recursive=True) if Path(p).is_file())
        if not parts:
            raise FileNotFoundError(f"{text}: no file matches this pattern")
        return parts
    folder = Path(text)
    if not folder.is_dir() or _is_saved_dataset(folder):
        return None
    parts = sorted(folder.rglob("*.parquet"))
    if not parts:
        return None
    splits = sorted({s for p in parts if (s := _split_of(p, folder)) is not None})
    if len(splits) > 1:
        raise PromptError(
            text,
            0,
            "<file>",
            f"holds several splits ({', '.join(splits)}); pick one with a glob, e.g. "
            f"'{folder}/**/{splits[-1]}-*.parquet'",
        )
    return parts


def check_source(source: PromptSource) -> None:
    """A missing path fails here, naming it (a glob that matches nothing too)."""
    if in_memory(source):
        return
    if not Path(source).exists() and parquet_parts(source) is None:
        raise FileNotFoundError(f"{source}: prompt file not found")


def arrow_batches(source: Any, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """An in-memory source's rows, `batch_rows` at a time (zero-copy slices)."""
    if isinstance(source, pa.Table):
        yield from source.to_batches(max_chunksize=batch_rows)
        return
    with_format = getattr(source, "with_format", None)
    if with_format is None:
        raise TypeError(
            f"prompts: a path, a pyarrow.Table or a datasets.Dataset, not {type(source).__name__}"
        )
    for table in with_format("arrow").iter(batch_size=batch_rows):
        yield from table.to_batches()


def in_memory_sha256(source: Any, batch_rows: int = 65536) -> str:
    """sha256 of an in-memory source's rows (each batch's Arrow IPC message, a batch at a
    time), so the manifest says which table a run read as it says which file."""
    digest = hashlib.sha256()
    for batch in arrow_batches(source, batch_rows):
        digest.update(batch.serialize())
    return digest.hexdigest()


def source_sha256(source: PromptSource) -> str | None:
    """The hash a glob or an in-memory source is recorded with (None: a file or folder,
    which `distill.teachers.licenses.source_sha256` hashes itself): a glob's matching
    files, as a folder's are hashed."""
    if in_memory(source):
        return in_memory_sha256(source)
    if Path(source).exists():
        return None
    from distill.store import sha256_file

    parts = parquet_parts(source) or []
    listing = "".join(f"{p.as_posix()}\t{sha256_file(p)}\n" for p in parts)
    return hashlib.sha256(listing.encode()).hexdigest()
