"""curate's write pass on Ray: each worker writes the kept and rejected rows of one shard.

A Ray Data task per input shard reads it with distill's reader (from the path the driver
was given: storage every node sees) and splits each batch with the local runner's own
`split_rows`; it writes the shard's kept rows and its rejected rows as one shard each,
numbered as the input shard (`write_shard(..., index=N)`), so workers never pick the same
name and the shards follow input order, rows in input order inside each. The driver lists
the shards in the runner's two `DatasetWriter`s (`adopt`), which then write the manifests
once, as after a local run. A shard that keeps (or rejects) nothing writes no file.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distill.curate.base import Step
from distill.curate.passes import SortedDrops, StepProgress
from distill.curate.split import split_rows
from distill.curate.stats import StepStats
from distill.engine import EngineConfig, ray_session
from distill.schemas import ShardInfo
from distill.store import DatasetWriter
from distill.store.read import shard_batches
from distill.store.shards import write_shard


def _shard_drops(drops: SortedDrops, start: int, rows: int) -> dict[str, Any]:
    lo, hi = np.searchsorted(drops.positions, [start, start + rows])
    return {
        "positions": drops.positions[lo:hi].tolist(),
        "steps": drops.steps[lo:hi].tolist(),
        "reasons": drops.reasons[lo:hi].tolist(),
        "details": drops.details[lo:hi],
    }


def _write_shard(item: dict[str, Any], **task: Any) -> dict[str, Any]:
    """Ray task: one input shard's rows to the kept and the rejected dataset."""
    drops = SortedDrops(
        np.array(item["positions"], dtype=np.int64),
        np.array(item["steps"], dtype=np.int32),
        np.array(item["reasons"], dtype=np.int8),
        list(item["details"]),
    )
    schema: pa.Schema = task["schema"]
    kept_parts, rejected_parts = [], []
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    start = item["start"]
    for batch in shard_batches(
        Path(item["file"]), item["sha256"], schema.names, task["batch_rows"]
    ):
        table = pa.Table.from_batches([batch])
        kept, rejected, domains, keep = split_rows(table, start, drops, task["step_names"])
        before.update(domains)
        after.update(d for d, k in zip(domains, keep, strict=True) if k)
        kept_parts.append(kept)
        rejected_parts.append(rejected)
        start += table.num_rows
    written = {}
    for name, parts, out_schema in (
        ("kept", kept_parts, schema),
        ("rejected", rejected_parts, task["rejected_schema"]),
    ):
        rows = sum(part.num_rows for part in parts)
        info = None
        if rows:
            table = pa.concat_tables([p.cast(out_schema) for p in parts]).combine_chunks()
            info = write_shard(Path(task[f"{name}_dir"]), table, out_schema, index=item["shard"])
        written[name] = "" if info is None else info.model_dump_json()
    return {
        "shard": item["shard"],
        **written,
        "before": json.dumps(before),
        "after": json.dumps(after),
    }


def ray_write_rows(
    ray: Any,
    items: list[dict[str, Any]],
    drops: SortedDrops,
    step_names: list[str],
    writers: tuple[DatasetWriter, DatasetWriter],
    batch_rows: int,
) -> tuple[Counter[str], Counter[str]]:
    """Write every shard's rows on Ray (`items`: `ray_keys.shard_items`); list the shards in
    `writers` (kept, rejected). Returns the domain counts of the input and of the kept rows."""
    work = [{**item, **_shard_drops(drops, item["start"], item["rows"])} for item in items]
    task = {
        "schema": writers[0].schema,
        "rejected_schema": writers[1].schema,
        "kept_dir": str(writers[0].dataset_dir),
        "rejected_dir": str(writers[1].dataset_dir),
        "step_names": step_names,
        "batch_rows": batch_rows,
    }
    dataset = ray.data.from_items(work, override_num_blocks=max(len(work), 1))
    results = sorted(dataset.map(_write_shard, fn_kwargs=task).take_all(), key=lambda r: r["shard"])
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    for index, writer in enumerate(writers):
        name = ("kept", "rejected")[index]
        writer.adopt([ShardInfo.model_validate_json(r[name]) for r in results if r[name]])
    for result in results:
        before.update(json.loads(result["before"]))
        after.update(json.loads(result["after"]))
    return before, after


def curate_on_ray(
    engine: EngineConfig,
    input_dir: Path,
    shards: list[ShardInfo],
    steps: list[Step],
    writers: tuple[DatasetWriter, DatasetWriter],
    batch_rows: int,
    progress: StepProgress | None,
) -> tuple[SortedDrops, list[StepStats], tuple[Counter[str], Counter[str]]]:
    """The key passes and the write pass of `curate_dataset` on the Ray cluster `engine`
    names: the drops, each step's stats and the domain counts (input, kept)."""
    from distill.curate.ray_keys import ray_key_passes, shard_items

    with ray_session(engine) as ray, _sort_shuffle(ray):
        schema = writers[0].schema
        drops, stats = ray_key_passes(ray, input_dir, shards, steps, schema, batch_rows, progress)
        items = shard_items(input_dir, shards)
        names = [step.name for step in steps]
        domains = ray_write_rows(ray, items, drops, names, writers, batch_rows)
    return drops, stats, domains


@contextmanager
def _sort_shuffle(ray: Any) -> Iterator[None]:
    """Ray Data's sort-based shuffle for the dedup steps' `groupby`s, for this job only: the
    default hash shuffle starts aggregator actors for 200 partitions, which on a small
    cluster took 10-20 s per groupby against well under 1 s."""
    from ray.data.context import ShuffleStrategy

    context = ray.data.DataContext.get_current()
    before = context.shuffle_strategy
    context.shuffle_strategy = ShuffleStrategy.SORT_SHUFFLE_PULL_BASED
    try:
        yield
    finally:
        context.shuffle_strategy = before
