"""Files that are never half-written: atomic writes, sha256, and what a crash leaves behind.

Every file is written to a temporary name in the same directory, fsynced and then renamed,
so a crash never leaves a half-written shard or manifest; a write that fails (a full disk:
ENOSPC, or any OSError) removes its temporary and raises `OutputWriteError`.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from pathlib import Path

DATA_DIR = "data"


class DatasetError(ValueError):
    """A dataset directory that can't be read as one: names the path and what is wrong."""


class OutputWriteError(DatasetError):
    """A write failed (disk full, I/O error); its temporary was removed, nothing partial left."""


def write_failed(path: Path, tmp: Path, exc: OSError) -> OutputWriteError:
    tmp.unlink(missing_ok=True)
    reason = exc.strerror or str(exc) or type(exc).__name__
    return OutputWriteError(
        f"{path}: write failed ({reason}); no partial file was left. Free some space (or fix "
        "the error) and re-run the same command: it resumes"
    )


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary(path)
    try:
        with tmp.open("wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        raise write_failed(path, tmp, exc) from exc


def write_json(path: Path, payload: object) -> None:
    atomic_write_bytes(Path(path), json.dumps(payload, indent=2, default=str).encode() + b"\n")


def remove_stale_temporaries(dataset_dir: Path) -> int:
    """Delete temporaries a crashed writer left behind; returns how many."""
    removed = 0
    for folder in (dataset_dir, dataset_dir / DATA_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink()
                removed += 1
    return removed
