"""What a gen output already holds: may this run add to it, which records are there, and
the manifest after a run (shared by `distill gen` and `distill score`).

One dataset may hold several teachers' records (their ids differ), but only teachers whose
rows mean the same to a student: one tokenizer, one k, one n (see `check_joinable`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from distill.gen.id_hashes import KeySet, keys_of
from distill.schemas import CODECS, Manifest, ShardInfo, TeacherInfo
from distill.store import (
    check_shard_bytes,
    damaged_shard,
    load_manifest,
    new_dataset_id,
    scan_shards,
    shard_paths,
)
from distill.teachers.backend import TeacherBackend

# Counts that describe one run (the others are the prompt file's, the same every run).
RUN_COUNTS = ("written", "failed", "retries", "skipped_existing", "unmapped_topk_entries")


def check_resumable(out_dir: Path, info: TeacherInfo, codec: str = "plain") -> Manifest | None:
    """The existing manifest if out_dir may be resumed with these settings, else an error."""
    if not (out_dir / "manifest.json").is_file():
        return None  # a new output, or one that crashed before its first manifest
    manifest = load_manifest(out_dir)
    if manifest.kind != "generated":
        raise ValueError(f"{out_dir}: holds a '{manifest.kind}' dataset, not gen output")
    if manifest.codec != codec:
        raise ValueError(
            f"{out_dir}: holds records written with --codec {manifest.codec}; "
            f"resume with --codec {manifest.codec} or use another --out"
        )
    same = [t for t in manifest.teachers if t.teacher_id == info.teacher_id]
    if same and same[0] != info:
        old = same[0]
        diffs = [
            f"{key}: existing {getattr(old, key)!r} vs now {getattr(info, key)!r}"
            for key in type(info).model_fields
            if getattr(old, key) != getattr(info, key)
        ]
        raise ValueError(
            f"{out_dir}: already holds records made with other settings; use another --out "
            "or the same settings to resume. Differences:\n  " + "\n  ".join(diffs)
        )
    if not same and manifest.teachers:
        check_joinable(out_dir, manifest.teachers[0], info)
    return manifest


# What every teacher of one dataset must share: the student trains on their token ids
# and top-k with one tokenizer and one loss, so these must mean the same for all rows.
JOINT_FIELDS = ("tokenizer_hash", "vocab_size", "chat_template_hash", "logprobs_mode", "top_k")


def check_joinable(out_dir: Path, first: TeacherInfo, info: TeacherInfo) -> None:
    """A new teacher may add its records to a dataset if its rows mean the same things."""
    diffs = [
        f"{key}: dataset {getattr(first, key)!r} vs {info.teacher_id} {getattr(info, key)!r}"
        for key in JOINT_FIELDS
        if getattr(first, key) != getattr(info, key)
    ]
    if first.sampling.n != info.sampling.n:
        diffs.append(f"n: dataset {first.sampling.n} vs {info.teacher_id} {info.sampling.n}")
    if diffs:
        raise ValueError(
            f"{out_dir}: teacher {info.teacher_id} can't join this dataset's teachers "
            f"({first.teacher_id}, ...): a student trains on one tokenizer and one k. "
            "Use another --out. Differences:\n  " + "\n  ".join(diffs)
        )


def existing_record_ids(out_dir: Path, previous: Manifest | None = None) -> KeySet:
    """The record ids in the shards on disk (`read_existing`)."""
    return read_existing(out_dir, previous)[0]


def read_existing(
    out_dir: Path, previous: Manifest | None = None
) -> tuple[KeySet, list[ShardInfo]]:
    """The record ids in the shards on disk, as a compact `KeySet` (128-bit hashes, 16 bytes
    a record; `record_id in keys` asks), and each shard's `ShardInfo`, from one read of
    each shard's bytes (hashed once, one column parsed).

    A shard the last manifest lists must match its sha256 (a damaged one stops the run,
    naming it); one written after that manifest (by a killed run) was renamed into place
    whole, so it is read as it is. A listed shard that is gone was deleted on purpose: its
    rows are missing, and this run makes them again."""
    listed = {shard.file: shard.sha256 for shard in previous.shards} if previous else {}
    parts, infos = [], []
    for path in shard_paths(out_dir):
        name = str(path.relative_to(out_dir))
        data = path.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        if name in listed:
            check_shard_bytes(path, data, listed[name])
        try:
            ids = pq.read_table(pa.BufferReader(data), columns=["record_id"]).column(0)
        except (pa.ArrowException, OSError) as exc:
            raise damaged_shard(path, f"unreadable Parquet ({exc})") from exc
        parts.append(keys_of(ids.to_pylist()))
        infos.append(ShardInfo(file=name, rows=len(ids), sha256=sha256))
    return KeySet.concat(parts), infos


def build_manifest(
    out_dir: Path,
    previous: Manifest | None,
    teacher: TeacherBackend,
    info: TeacherInfo,
    params: dict,
    run_id: str,
    counts: dict[str, int],
    codec: str = "plain",
    run_stats: dict[str, float] | None = None,
    shards: list[ShardInfo] | None = None,
) -> Manifest:
    """The manifest after this run. `counts` are this run's (plus the dataset's `rows`);
    `stats["runs"]` keeps every run's counts, teacher and cost (`run_stats`), so a dataset
    made by several runs or teachers still says what each one wrote, failed and cost, and
    `stats["cost_usd"]` is the dataset's total. `shards`: the shards on disk, if the caller
    keeps track of them (a run does: hashing every shard again after each new one would cost
    time quadratic in the dataset); else they are scanned."""
    shards = shards if shards is not None else scan_shards(out_dir)
    run_ids = [*(previous.run_ids if previous else []), run_id]
    return Manifest(
        stats=run_history(previous, info, run_id, counts, run_stats or {}),
        schema_version=CODECS[codec],
        codec=codec,
        kind="generated",
        dataset_id=previous.dataset_id if previous else new_dataset_id(),
        teachers=[*previous.teachers, *([] if info in previous.teachers else [info])]
        if previous
        else [info],
        tokenizer=previous.tokenizer
        if previous and previous.tokenizer
        else teacher.tokenizer_info(),
        top_k=info.top_k,
        params=params,
        targets=params.get("targets", "topk"),
        counts={**counts, "rows": sum(s.rows for s in shards)},
        shards=shards,
        run_ids=list(dict.fromkeys(run_ids)),
    )


def run_history(
    previous: Manifest | None,
    info: TeacherInfo,
    run_id: str,
    counts: dict[str, int],
    run_stats: dict[str, float],
) -> dict[str, Any]:
    """`stats` with this run's entry added to (or, on a mid-run rewrite, replacing) the
    earlier runs', and the total cost when any run was priced."""
    earlier = previous.stats.get("runs", []) if previous else []
    runs = [run for run in earlier if run["run_id"] != run_id]
    run_counts = {
        key: value
        for key, value in counts.items()
        if key in RUN_COUNTS or key.startswith(("failed_", "usage_"))
    }
    runs.append({"run_id": run_id, "teacher_id": info.teacher_id, **run_counts, **run_stats})
    stats: dict[str, Any] = {**(previous.stats if previous else {}), "runs": runs}
    costs = [run["cost_usd"] for run in runs if "cost_usd" in run]
    if costs:
        stats["cost_usd"] = round(sum(costs), 6)
    return stats
