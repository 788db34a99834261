"""The key passes of a streamed curation: every step's decisions, from compact per-row keys.

A pass streams the input once (only the columns its steps read) and, batch by batch, runs
its steps in recipe order on the rows still alive: each step turns the batch into keys
(`Step.keys`), and a row-local step's drops are known at once, so later steps of the pass
never see those rows. A global step (dedup, balancing) decides only after the pass, from the
keys of every row; until then the rows it will drop flow on to the steps after it. So after
the pass its steps are resolved in recipe order on the collected keys, each on the rows no
earlier step dropped, which gives exactly the decisions of a run over the whole table.

A pass ends before an *expensive* step (`llm_judge`) that follows a global step, so a model
is never asked about a row an earlier step drops; every other recipe needs one key pass.
Only keys, one byte per input row (alive) and the drops (positions, codes, and the details
of the dropped rows) outlive a batch.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distill.curate.base import Decisions, Drop, RejectReason, Step, kept_by_keys
from distill.curate.stats import StepStats
from distill.store import iter_batches

log = logging.getLogger(__name__)

StepProgress = Callable[[Step, "StepStats | None"], None]
REASONS = list(RejectReason)
REASON_CODE = {reason: code for code, reason in enumerate(REASONS)}


def plan_passes(steps: list[Step]) -> list[list[int]]:
    """Step indices per key pass: a new pass before an expensive step that follows a
    global step in the current pass."""
    passes: list[list[int]] = []
    current: list[int] = []
    global_seen = False
    for index, step in enumerate(steps):
        if step.expensive and global_seen:
            passes.append(current)
            current, global_seen = [], False
        current.append(index)
        global_seen = global_seen or not step.row_local
    if current:
        passes.append(current)
    return passes


@dataclass
class StepKeys:
    """One step's keys as they are streamed: tables and the input positions of their rows."""

    parts: list[pa.Table] = field(default_factory=list)
    positions: list[np.ndarray] = field(default_factory=list)
    shown: int = 0  # rows given to `keys` so far
    seconds: float = 0.0


@dataclass
class Drops:
    """Every drop, compact: input position, step index, reason code, details as JSON."""

    positions: list[np.ndarray] = field(default_factory=list)
    steps: list[np.ndarray] = field(default_factory=list)
    reasons: list[np.ndarray] = field(default_factory=list)
    details: list[str] = field(default_factory=list)

    def add(self, step: int, positions: np.ndarray, decisions: Decisions) -> None:
        dropped = [d for d in decisions if d is not None]
        self.positions.append(positions)
        self.steps.append(np.full(len(positions), step, dtype=np.int32))
        codes = [REASON_CODE[d.reason] for d in dropped]
        self.reasons.append(np.array(codes, dtype=np.int8))
        self.details.extend(json.dumps(d.details, sort_keys=True) for d in dropped)

    def in_input_order(self) -> SortedDrops:
        if not self.positions:
            empty = np.zeros(0, dtype=np.int64)
            return SortedDrops(empty, empty.astype(np.int32), empty.astype(np.int8), [])
        positions = np.concatenate(self.positions)
        order = np.argsort(positions, kind="stable")
        details = [self.details[i] for i in order.tolist()]
        steps, reasons = np.concatenate(self.steps), np.concatenate(self.reasons)
        return SortedDrops(positions[order], steps[order], reasons[order], details)


@dataclass
class SortedDrops:
    positions: np.ndarray
    steps: np.ndarray
    reasons: np.ndarray
    details: list[str]


def stream_keys(
    input_dir: Path,
    steps: list[Step],
    pass_steps: list[int],
    alive: np.ndarray,
    columns: list[str],
    batch_rows: int,
) -> dict[int, StepKeys]:
    """One pass over the input: the keys of each step of `pass_steps`."""
    batches = iter_batches(input_dir, batch_rows, columns=columns)
    return keys_of_batches(batches, steps, pass_steps, alive)


def keys_of_batches(
    batches: Iterable[pa.RecordBatch],
    steps: list[Step],
    pass_steps: list[int],
    alive: np.ndarray,
    start: int = 0,
    shown: dict[int, int] | None = None,
) -> dict[int, StepKeys]:
    """The keys of each step of `pass_steps` over `batches`, whose first row is input
    position `start` (`alive`: one flag per input row); `shown`: rows each step was shown
    before these (a Ray worker starts mid-input)."""
    found = {index: StepKeys(shown=(shown or {}).get(index, 0)) for index in pass_steps}
    for batch in batches:
        positions = np.arange(start, start + batch.num_rows)
        start += batch.num_rows
        live = alive[positions]
        table = pa.Table.from_batches([batch]).filter(pa.array(live))
        positions = positions[live]
        for index in pass_steps:
            if not table.num_rows:
                break
            step, step_keys = steps[index], found[index]
            started = time.perf_counter()
            keys = step.keys(table, step_keys.shown)
            if keys.num_rows != table.num_rows:
                raise RuntimeError(
                    f"step {step.name!r} returned {keys.num_rows} keys for {table.num_rows} rows"
                )
            step_keys.shown += table.num_rows
            step_keys.parts.append(keys)
            step_keys.positions.append(positions)
            if step.row_local:  # its drops are final: later steps never see those rows
                kept = kept_by_keys(keys)
                table, positions = table.filter(kept), positions[kept.to_numpy(False)]
            step_keys.seconds += time.perf_counter() - started
    return found


def _all_keys(step: Step, step_keys: StepKeys, empty: pa.Table) -> tuple[pa.Table, np.ndarray]:
    if not step_keys.parts:  # no row reached the step: its keys of nothing, for the summary
        return step.keys(empty), np.zeros(0, dtype=np.int64)
    keys = pa.concat_tables(step_keys.parts)
    step_keys.parts.clear()
    return keys, np.concatenate(step_keys.positions)


def resolve(
    step: Step,
    index: int,
    step_keys: StepKeys,
    empty: pa.Table,
    alive: np.ndarray,
    drops: Drops,
) -> StepStats:
    """Decide `step` on the keys of its rows still alive; mark its drops in `alive`."""
    started = time.perf_counter()
    keys, positions = _all_keys(step, step_keys, empty)
    live = alive[positions]
    keys, positions = keys.filter(pa.array(live)), positions[live]
    decisions = step.decide_keys(keys) if keys.num_rows else []
    if len(decisions) != keys.num_rows:
        raise RuntimeError(
            f"step {step.name!r} returned {len(decisions)} decisions for {keys.num_rows} rows"
        )
    summary = step.summarize_keys(keys, decisions)
    dropped_at = np.flatnonzero(
        np.fromiter((d is not None for d in decisions), bool, len(decisions))
    )
    dropped = [decisions[i] for i in dropped_at]
    seconds = step_keys.seconds + time.perf_counter() - started
    return record_decisions(
        step, index, (keys.num_rows, positions[dropped_at], dropped), summary, seconds, alive, drops
    )


def record_decisions(
    step: Step,
    index: int,
    decided: tuple[int, np.ndarray, list[Drop]],
    summary: dict[str, Any],
    seconds: float,
    alive: np.ndarray,
    drops: Drops,
) -> StepStats:
    """Book a step's decisions: `decided` = (rows it decided, input positions of its drops,
    their Drops); its drops go to `drops` and out of `alive`. Returns its stats."""
    rows, positions, dropped = decided
    drops.add(index, positions, dropped)
    alive[positions] = False
    counts = Counter(drop.reason.value for drop in dropped)
    stats = StepStats(
        step=step.name,
        params=step.params(),
        input=rows,
        kept=rows - len(dropped),
        dropped=dict(sorted(counts.items())),
        seconds=round(seconds, 4),
        summary=summary,
    )
    log.info("%s: %d in, %d kept, dropped %s", step.name, stats.input, stats.kept, stats.dropped)
    return stats


def run_key_passes(
    input_dir: Path,
    steps: list[Step],
    schema: pa.Schema,
    num_rows: int,
    batch_rows: int,
    progress: StepProgress | None = None,
) -> tuple[SortedDrops, list[StepStats]]:
    """Every step's decisions over the input (`num_rows` rows of `schema`): the drops in
    input order and each step's stats."""
    alive = np.ones(num_rows, dtype=bool)
    drops, all_stats = Drops(), []
    for pass_steps in plan_passes(steps):
        columns = pass_columns([steps[i] for i in pass_steps], schema)
        try:
            found = stream_keys(input_dir, steps, pass_steps, alive, columns, batch_rows)
        finally:
            for index in pass_steps:
                steps[index].release()  # a judge's model: loaded for this pass only
        empty = schema.empty_table().select(columns)
        for index in pass_steps:
            step = steps[index]
            if progress is not None:
                progress(step, None)
            stats = resolve(step, index, found.pop(index), empty, alive, drops)
            if progress is not None:
                progress(step, stats)
            all_stats.append(stats)
    return drops.in_input_order(), all_stats


def pass_columns(steps: list[Step], schema: pa.Schema) -> list[str]:
    """The input columns the steps of a pass read, in the schema's order."""
    wanted: set[str] = set()
    for step in steps:
        wanted.update(step.read_columns(schema))
    return [name for name in schema.names if name in wanted]
