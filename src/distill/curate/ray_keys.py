"""The key passes of `distill.curate.passes` on Ray Data: the same decisions, made by workers.

A pass is one Ray Data task per input shard (`ray.data.from_items` over the manifest's
shards, `flat_map`): each task reads its shard with distill's own reader (checked against
its sha256) and runs `passes.keys_of_batches` on it, so row-local steps, a judge included,
decide inside the workers. The manifest's row counts give each shard's first input
position, so every key carries its row's global position. Workers read the input from
the path the driver was given: the engine assumes storage every node sees at that path
(one machine, or a cluster with shared storage).

A task's output is one row per (shard, step): the step's keys for that shard as Arrow IPC,
with the rows' positions. The pass's output stays in Ray's object store; then its steps are
resolved in recipe order, each on the rows no earlier step dropped, as `passes` does:

- `exact_dedup` groups its digests by a shuffle (`ray_dedup.exact_on_ray`);
- `near_dedup` is distributed end to end (`ray_near.near_on_ray`);
- every other step is resolved on the driver by `passes.resolve` from the collected keys.
  Those keys are compact: a row-local step's decision (a null reason for a kept row) and
  its summary columns, a balancing step's domain and token count, `select_teacher`'s
  prompt id, teacher and score, `semantic_dedup`'s text (its embeddings and cosine
  search stay on the driver, as in a local run: distributing a nearest-neighbour search
  is not done yet).

The driver holds one byte per input row (`alive`, as locally), the drops, and the keys of
one pass's driver-resolved steps (a local pass holds those too). A pass also ends before
every expensive step (a judge), so that step is first in its pass and its workers know how
many rows it was shown before their shard (`offset`, the judge's seeds); only an expensive
step reads that offset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distill.curate.base import Step
from distill.curate.dedup import ExactDedup, NearDedup
from distill.curate.passes import (
    Drops,
    SortedDrops,
    StepKeys,
    StepProgress,
    keys_of_batches,
    pass_columns,
    plan_passes,
    resolve,
)
from distill.curate.ray_blocks import POSITION, from_ipc, to_ipc
from distill.curate.ray_dedup import exact_on_ray
from distill.curate.ray_near import near_on_ray
from distill.curate.stats import StepStats
from distill.schemas import ShardInfo
from distill.store.read import shard_batches


def ray_passes(steps: list[Step]) -> list[list[int]]:
    """`plan_passes`, with a new pass before every expensive step not already first."""
    passes: list[list[int]] = []
    for planned in plan_passes(steps):
        current: list[int] = []
        for index in planned:
            if steps[index].expensive and current:
                passes.append(current)
                current = []
            current.append(index)
        passes.append(current)
    return passes


def shard_items(input_dir: Path, shards: list[ShardInfo]) -> list[dict[str, Any]]:
    """One item per input shard: its number, path, sha256, rows and first input position."""
    starts = np.cumsum([0, *(shard.rows for shard in shards)])
    return [
        {
            "shard": number,
            "file": str(Path(input_dir) / shard.file),
            "sha256": shard.sha256,
            "rows": shard.rows,
            "start": int(starts[number]),
        }
        for number, shard in enumerate(shards)
    ]


def _shard_keys(item: dict[str, Any], **task: Any) -> list[dict[str, Any]]:
    """Ray task: the keys of the pass's steps over one shard, a row per step."""
    import ray

    steps: list[Step] = task["steps"]
    pass_steps: list[int] = task["pass_steps"]
    alive = ray.get(task["alive"][0])
    batches = shard_batches(Path(item["file"]), item["sha256"], task["columns"], task["batch_rows"])
    shown = {pass_steps[0]: int(item["shown"])}
    try:
        found = keys_of_batches(batches, steps, pass_steps, alive, item["start"], shown)
    finally:
        for index in pass_steps:
            steps[index].release()
    rows = []
    for index, step_keys in found.items():
        if step_keys.parts:
            keys = pa.concat_tables(step_keys.parts).combine_chunks()
            positions = np.concatenate(step_keys.positions)
        else:  # no row of this shard reached the step: its keys of nothing, typed
            keys, positions = steps[index].keys(task["empty"]), np.zeros(0, dtype=np.int64)
        keys = keys.append_column(POSITION, pa.array(positions, pa.int64()))
        rows.append(
            {
                "shard": item["shard"],
                "step": index,
                "seconds": step_keys.seconds,
                "keys": to_ipc(keys),
            }
        )
    return rows


def pass_keys(
    ray: Any,
    items: list[dict[str, Any]],
    steps: list[Step],
    pass_steps: list[int],
    alive: np.ndarray,
    columns: tuple[list[str], pa.Table],
    batch_rows: int,
) -> Any:
    """One key pass as Ray Data tasks (not run yet): rows (shard, step, seconds, keys)."""
    names, empty = columns
    shown = np.cumsum([0, *(int(alive[i["start"] : i["start"] + i["rows"]].sum()) for i in items)])
    work = [{**item, "shown": int(shown[n])} for n, item in enumerate(items)]
    task = {
        "steps": steps,
        "pass_steps": pass_steps,
        "alive": [ray.put(alive)],  # in a list: handed over as a reference, fetched once
        "columns": names,
        "empty": empty,
        "batch_rows": batch_rows,
    }
    dataset = ray.data.from_items(work, override_num_blocks=max(len(work), 1))
    return dataset.flat_map(_shard_keys, fn_kwargs=task)


def collected_keys(rows: list[dict[str, Any]], index: int) -> StepKeys:
    """One step's keys from every shard's `rows` of a pass, in input order."""
    rows = sorted((row for row in rows if row["step"] == index), key=lambda row: row["shard"])
    found = StepKeys(seconds=sum(row["seconds"] for row in rows))
    for row in rows:
        table = from_ipc(row["keys"])
        if table.num_rows:
            found.positions.append(table.column(POSITION).to_numpy())
            found.parts.append(table.drop_columns([POSITION]))
    return found


def ray_key_passes(
    ray: Any,
    input_dir: Path,
    shards: list[ShardInfo],
    steps: list[Step],
    schema: pa.Schema,
    batch_rows: int,
    progress: StepProgress | None = None,
) -> tuple[SortedDrops, list[StepStats]]:
    """`passes.run_key_passes` on Ray: the same drops in input order and step stats."""
    items = shard_items(input_dir, shards)
    alive = np.ones(sum(shard.rows for shard in shards), dtype=bool)
    drops, all_stats = Drops(), []
    for pass_steps in ray_passes(steps):
        names = pass_columns([steps[i] for i in pass_steps], schema)
        empty = schema.empty_table().select(names)
        keys_ds = pass_keys(ray, items, steps, pass_steps, alive, (names, empty), batch_rows)
        shuffled = any(isinstance(steps[i], (ExactDedup, NearDedup)) for i in pass_steps)
        # A pass without a shuffled step sends all its keys to the driver: in one go.
        collected = None if shuffled else keys_ds.take_all()
        keys_ds = keys_ds.materialize() if shuffled else None
        for index in pass_steps:
            step = steps[index]
            if progress is not None:
                progress(step, None)
            if isinstance(step, ExactDedup):
                stats = exact_on_ray(ray, step, index, keys_ds, alive, drops)
            elif isinstance(step, NearDedup):
                stats = near_on_ray(ray, step, index, keys_ds, alive, drops)
            else:
                rows = collected
                if rows is None:
                    rows = keys_ds.filter(expr=f"step == {index}").take_all()
                stats = resolve(step, index, collected_keys(rows, index), empty, alive, drops)
            if progress is not None:
                progress(step, stats)
            all_stats.append(stats)
    return drops.in_input_order(), all_stats
