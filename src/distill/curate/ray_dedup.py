"""`exact_dedup` on Ray: the first row of each digest kept, found by a shuffle.

Exact dedup groups rows by their digest with a Ray Data shuffle (`groupby` on the digest's
first 8 bytes; rows of one bucket are told apart by the whole digest): each group is
sorted by input position and decided by the step's own `first_occurrences`, so the first
row of a digest survives and every later one names it, exactly as a local run does. Only
the drops come back to the driver, never a hash per row.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pyarrow as pa

from distill.curate.base import Drop, RejectReason
from distill.curate.dedup import ExactDedup
from distill.curate.passes import Drops, record_decisions
from distill.curate.ray_blocks import collect, step_rows
from distill.curate.stats import StepStats

_DUPLICATES = pa.schema([("position", pa.int64()), ("duplicate_of", pa.string())])


def _with_bucket(batch: pa.Table) -> pa.Table:
    """Ray task: the digest's first 8 bytes as an int64 bucket, the shuffle's key."""
    digests = batch.column("digest").combine_chunks()
    raw = np.frombuffer(digests.buffers()[1], dtype=np.uint8)
    raw = raw[digests.offset * 16 : (digests.offset + len(digests)) * 16]
    return batch.append_column(
        "bucket", pa.array(raw.reshape(-1, 16)[:, :8].copy().view("<i8")[:, 0])
    )


def _later_occurrences(group: pa.Table, step: ExactDedup) -> pa.Table:
    """Ray task: one bucket's rows decided in input order; the dropped ones."""
    group = group.sort_by("position")
    decisions = step.first_occurrences(
        group.column("record_id").to_pylist(), group.column("digest").to_pylist()
    )
    at = [i for i, decision in enumerate(decisions) if decision is not None]
    return pa.table(
        {
            "position": group.column("position").take(pa.array(at, pa.int64())),
            "duplicate_of": [decisions[i].details["duplicate_of"] for i in at],  # type: ignore[union-attr]
        },
        schema=_DUPLICATES,
    )


def exact_on_ray(
    ray: Any, step: ExactDedup, index: int, keys_ds: Any, alive: np.ndarray, drops: Drops
) -> StepStats:
    """Decide `exact_dedup` by a shuffle of its digests; book its drops like `resolve`."""
    started = time.perf_counter()
    rows, worker_seconds = step_rows(ray, keys_ds, index, alive)
    count = rows.count()
    found = _DUPLICATES.empty_table()
    if count:
        grouped = rows.map_batches(_with_bucket, batch_format="pyarrow").groupby("bucket")
        later = grouped.map_groups(
            _later_occurrences, batch_format="pyarrow", fn_kwargs={"step": step}
        )
        found = collect(later, _DUPLICATES).sort_by("position")
    dropped = [
        Drop(RejectReason.EXACT_DUPLICATE, {"duplicate_of": of})
        for of in found.column("duplicate_of").to_pylist()
    ]
    seconds = worker_seconds + time.perf_counter() - started
    positions = found.column("position").to_numpy()
    # exact_dedup summarises nothing (`Step.summarize`), locally either.
    return record_decisions(step, index, (count, positions, dropped), {}, seconds, alive, drops)
