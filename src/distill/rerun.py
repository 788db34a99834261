"""Outputs written in one go (`curate`, `pack`): the same command, run again, redoes them.

Before writing anything, such a command records what it makes in `OUT/.distill-job.json`:
the command and a key, the hash of its input (path and manifest) and settings. Started on
an OUT that holds the same job, finished or cut short by a kill, it clears that job's files
and writes them again. Its output depends only on its input and settings (no clock, no
randomness; the dataset ids are derived from the key), so the shards are byte-identical to
an uninterrupted run's. An OUT holding anything else (another job, or a dataset written
without a job file) is refused, as before: outputs are never silently mixed or replaced.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from distill.store import (
    DATA_DIR,
    MANIFEST_NAME,
    DatasetError,
    atomic_write_bytes,
    remove_stale_temporaries,
    sha256_file,
    shard_paths,
)

JOB_NAME = ".distill-job.json"


def job_key(command: str, input_dir: Path, settings: Any) -> str:
    """What makes two runs the same job: the command, the input (where and which) and settings."""
    input_dir = Path(input_dir)
    payload = {
        "command": command,
        "input": str(input_dir.resolve()),
        "input_manifest": sha256_file(input_dir / MANIFEST_NAME),
        "settings": settings,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def derived_dataset_id(key: str, kind: str) -> str:
    """A dataset id that a rerun of the same job gives again."""
    return hashlib.sha256(f"{key}:{kind}".encode()).hexdigest()[:32]


def clear_dataset(dataset_dir: Path) -> None:
    """Delete a dataset's manifest (first: a reader never sees a manifest with half its
    shards), shards and temporaries; other files in the directory stay."""
    (dataset_dir / MANIFEST_NAME).unlink(missing_ok=True)
    for path in shard_paths(dataset_dir):
        path.unlink()
    remove_stale_temporaries(dataset_dir)
    data = dataset_dir / DATA_DIR
    if data.is_dir() and not any(data.iterdir()):
        data.rmdir()


def claim_output(out_dir: Path, command: str, key: str, datasets: list[Path]) -> None:
    """Make `datasets` (the dataset dirs the job writes, under `out_dir`) ready for the job.

    The caller holds `out_dir`'s lock (`distill.locking`), so no other writer is in it.
    """
    job_path = Path(out_dir) / JOB_NAME
    held: dict[str, Any] = {}
    if job_path.is_file():
        try:
            held = json.loads(job_path.read_text())
        except ValueError:
            held = {}
    written = any(
        shard_paths(dataset_dir) or (dataset_dir / MANIFEST_NAME).is_file()
        for dataset_dir in map(Path, datasets)
    )
    if held and held.get("key") != key and written:
        raise DatasetError(
            f"{out_dir}: holds the output of another `distill {held.get('command', '?')}` "
            "(other input or settings); choose an empty --out"
        )
    if not held:
        for dataset_dir in datasets:
            if shard_paths(dataset_dir) or (dataset_dir / MANIFEST_NAME).is_file():
                raise DatasetError(f"{dataset_dir}: already holds a dataset; choose an empty --out")
    # Past here: an empty OUT, this job's own output, or a job that stopped before writing.
    for dataset_dir in datasets:
        clear_dataset(Path(dataset_dir))
    atomic_write_bytes(job_path, json.dumps({"command": command, "key": key}).encode() + b"\n")
