"""What the Ray curate modules pass between them: a step's keys as Arrow IPC beside their
rows' input positions, the key rows still alive as a Ray dataset, and a small dataset's
rows collected on the driver."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

POSITION = "__position"  # the input position of a key's row, beside the step's own keys


def to_ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(payload).read_all()


def _alive_key_rows(batch: pa.Table, alive: list[Any]) -> pa.Table:
    """Ray task: a block of (shard, step, keys) rows as the key rows still alive, with their
    input `position`, dictionary columns decoded (a shuffle sorts plain values)."""
    import ray

    flags = ray.get(alive[0])
    tables = [from_ipc(payload) for payload in batch.column("keys").to_pylist()]
    table = pa.concat_tables(tables).combine_chunks()
    table = table.filter(pa.array(flags[table.column(POSITION).to_numpy()]))
    columns = {
        name: pc.cast(column, column.type.value_type)
        if pa.types.is_dictionary(column.type)
        else column
        for name, column in zip(table.column_names, table.columns, strict=True)
    }
    columns["position"] = columns.pop(POSITION)
    return pa.table(columns)


def step_rows(ray: Any, keys_ds: Any, index: int, alive: np.ndarray) -> tuple[Any, float]:
    """The key rows of step `index` still alive, as a materialised Ray dataset, and the
    seconds the workers spent making them."""
    of_step = keys_ds.filter(expr=f"step == {index}")
    seconds = float(of_step.sum("seconds") or 0.0)
    rows = of_step.map_batches(
        _alive_key_rows, batch_format="pyarrow", fn_kwargs={"alive": [ray.put(alive)]}
    )
    return rows.materialize(), seconds


def collect(dataset: Any, schema: pa.Schema) -> pa.Table:
    """A (small) Ray dataset's rows on the driver, as one table of `schema`."""
    batches = dataset.iter_batches(batch_format="pyarrow", batch_size=None)
    tables = [t.select(schema.names).cast(schema) for t in batches if t.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()
