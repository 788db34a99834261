"""Where curate's two outputs live: the kept rows in OUT, the rejected rows beside it.

    curated/            kept rows (kind "curated"); params["rejected_dir"] = "../curated-rejected"
    curated-rejected/   every dropped row with its step and reason (kind "rejected");
                        params["kept_dir"] = "../curated"

Two sibling datasets, so every common reader of the kept folder (`datasets.load_dataset`,
a DuckDB or Polars glob `curated/**/*.parquet`) gets exactly the kept rows. Each records
the other relative to itself, so the pair can be moved together. `--rejected-out` puts the
rejected rows elsewhere; `default_rejected_dir` (in `distill.store.lineage`) is the one
place that says where they go otherwise.

Datasets written before this layout (`curated/rejected/`) still read everywhere
(`rejected_path` follows what the manifest recorded). Nothing is moved on read: readers
may run on read-only copies, and the kept manifest's bytes are what its children hashed.
Such a dataset moves to the new layout when the same `distill curate` runs again on it (the
rerun clears both old and new places and writes the new layout), or in place, without
recomputing anything, with `migrate_rejected_layout`.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from distill.dataset_card import write_card
from distill.locking import LOCK_NAME, output_lock
from distill.rerun import JOB_NAME, claim_output, job_key
from distill.store import DatasetError, load_manifest, save_manifest
from distill.store.lineage import (
    LEGACY_REJECTED_SUBDIR,
    default_rejected_dir,
    points_back,
    relative_link,
)
from distill.store.shards import MANIFEST_NAME

__all__ = ["claim_curate_outputs", "migrate_rejected_layout", "rejected_out"]


def rejected_out(out_dir: Path, rejected_dir: Path | None = None) -> Path:
    """Where a curate run writes its rejected rows: `rejected_dir` if given, else the
    sibling of `out_dir`. Refuses the kept folder itself."""
    found = Path(rejected_dir) if rejected_dir is not None else default_rejected_dir(out_dir)
    if found.resolve() == Path(out_dir).resolve():
        raise DatasetError(f"{found}: the rejected rows need a folder other than --out")
    return found


def claim_curate_outputs(
    input_dir: Path, out_dir: Path, rejected_dir: Path, settings: object
) -> str:
    """Fail before any work on an output that holds another dataset; clear an earlier run
    of this same job, in the new layout or the old (`OUT/rejected`). Each folder records
    the job (`distill.rerun`), so a rerun is recognised in both. The caller holds both
    folders' locks. Returns the job's key; where the rejected rows go is not part of it,
    so rerunning an old-layout job moves it to the new layout."""
    input_dir, out_dir, rejected_dir = Path(input_dir), Path(out_dir), Path(rejected_dir)
    for path in (out_dir, rejected_dir):
        if path.resolve() == input_dir.resolve():
            raise DatasetError(f"{path}: the output must differ from the input dataset")
    key = job_key("curate", input_dir, settings)
    legacy = out_dir / LEGACY_REJECTED_SUBDIR
    claim_output(out_dir, "curate", key, [out_dir, legacy])
    emptied = legacy.is_dir() and {p.name for p in legacy.iterdir()} <= {LOCK_NAME, JOB_NAME}
    if legacy != rejected_dir and emptied:
        shutil.rmtree(legacy)
    claim_output(rejected_dir, "curate", key, [rejected_dir])
    return key


def _repoint(rejected_dir: Path, kept_dir: Path) -> None:
    manifest = load_manifest(rejected_dir)
    params = {**manifest.params, "kept_dir": relative_link(rejected_dir, kept_dir)}
    save_manifest(rejected_dir, manifest.model_copy(update={"params": params}))


def _moved_but_not_repointed(target: Path, kept_dir: Path) -> bool:
    """A migration cut short between the move and the rewrite of the manifest."""
    if not (target / MANIFEST_NAME).is_file() or load_manifest(target).kind != "rejected":
        return False
    return not points_back(target, kept_dir)


def migrate_rejected_layout(kept_dir: Path) -> Path | None:
    """Move an old curated dataset's `DIR/rejected/` out to `DIR-rejected/`; returns where
    it went (None: nothing to move). The shards and the kept manifest stay byte for byte
    (a child's recorded hash of it still holds; `rejected_path` finds the sibling because
    it points back); the rejected manifest's `kept_dir` and both cards are rewritten.
    Running it again after a crash finishes the job."""
    kept_dir = Path(kept_dir)
    manifest = load_manifest(kept_dir)
    legacy, target = kept_dir / LEGACY_REJECTED_SUBDIR, default_rejected_dir(kept_dir)
    if manifest.kind != "curated" or manifest.params.get("rejected_dir") != LEGACY_REJECTED_SUBDIR:
        return None
    with output_lock(kept_dir):
        if (legacy / MANIFEST_NAME).is_file():
            if target.exists() and any(target.iterdir()):
                raise DatasetError(f"{target}: already exists; move it away to migrate {legacy}")
            if target.exists():
                target.rmdir()
            os.replace(legacy, target)  # one rename: the rows are never in two places
            if (kept_dir / JOB_NAME).is_file():  # a rerun of the job recognises both folders
                shutil.copyfile(kept_dir / JOB_NAME, target / JOB_NAME)
        elif not _moved_but_not_repointed(target, kept_dir):
            return None
        _repoint(target, kept_dir)
        write_card(target)
        write_card(kept_dir)
    return target
