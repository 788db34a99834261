"""How the write pass splits a batch of input rows: kept rows, and rejected rows with their
step, reason and details. One piece for both engines: the local runner's write pass and
each Ray worker's (`distill.curate.ray_write`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from distill.curate.base import domain_of
from distill.curate.passes import REASONS, SortedDrops
from distill.schemas import schema_for


def _rejected_rows(
    table: pa.Table, at: np.ndarray, drops: SortedDrops, lo: int, hi: int, names: list[str]
) -> pa.Table:
    """The rows of `table` at `at`, dropped by `drops[lo:hi]`, plus the three reject columns."""
    reasons = [REASONS[code].value for code in drops.reasons[lo:hi].tolist()]
    extra = {
        "reject_step": pa.array([names[i] for i in drops.steps[lo:hi].tolist()], pa.string()),
        "reject_reason": pa.array(reasons, pa.string()),
        "reject_details": pa.array(drops.details[lo:hi], pa.string()),
    }
    rejected = table.take(pa.array(at))
    for field in schema_for(table, rejected=True):
        if field.name in extra:
            rejected = rejected.append_column(field, extra[field.name])
    return rejected


def split_rows(
    table: pa.Table, start: int, drops: SortedDrops, step_names: list[str]
) -> tuple[pa.Table, pa.Table, list[str], list[bool]]:
    """Rows of `table` (whose first row is input position `start`) split by `drops`: the
    kept rows, the rejected rows with their reject columns, each row's domain and whether
    it is kept."""
    lo, hi = np.searchsorted(drops.positions, [start, start + table.num_rows])
    at = drops.positions[lo:hi] - start
    keep = np.ones(table.num_rows, dtype=bool)
    keep[at] = False
    domains = [domain_of(d) for d in table.column("domain").to_pylist()]
    rejected = _rejected_rows(table, at, drops, lo, hi, step_names)
    return table.filter(pa.array(keep)), rejected, domains, keep.tolist()
