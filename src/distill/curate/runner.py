"""Run a recipe over a dataset: kept rows to OUT, every dropped row to OUT-rejected beside it.

Curation streams: memory holds one batch of rows and the compact per-row keys of the
steps (hashes, a domain, a token count, a decision), never the dataset. First the key
passes (`distill.curate.passes`, one for most recipes) decide every step from keys; then a
write pass streams the input again and writes each row where it belongs, kept rows with a
`DatasetWriter` and dropped rows, with their step, reason and details, with another. Steps
only decide; this module does the I/O, the selection and the bookkeeping. Rows are selected
with pyarrow (`filter` / `take`), so the top-k payload of a kept row is the same Arrow data
it was in the input and stays aligned with its record. Kept and rejected rows are both
written in input order, and nothing here depends on time, randomness or the batch size,
so re-running on the same input writes byte-identical shards. The same command run again
on its own OUT (after a kill, or after it finished) clears it and redoes the job
(`distill.rerun`); the input's shards are checked against its manifest as they are read.
Where the two outputs live and how a rerun claims them is `distill.curate.layout`'s.
The rejected dataset's manifest is written first and the kept manifest last, so a complete
`OUT/manifest.json` means the whole job finished. Per-run fields of the manifests:
`created_at` and each step's `seconds`.

What the kept dataset's manifest records (a report reads these keys):

- `steps`: one entry per step — {step, params, input, kept, dropped: {reason: count},
  seconds, summary};
- `counts`: `input`, `kept`, `rejected`, `dropped_<reason>` for every reason seen, and
  `rows` (= kept, filled by the store);
- `params["recipe"]`: the recipe as run; `params["rejected_dir"]`: the rejected dataset,
  relative to OUT ("../OUT-rejected" by default);
- `stats["domains_before"]` / `stats["domains_after"]`: {domain: rows} of the input and
  of the kept rows, a null domain counted as "unknown";
- `stats["accuracy_by_domain"]`: {domain: {graded, correct, accuracy}} over the rows that
  reached `mcq_verify` with a letter reference (no answer found counts as incorrect);
  absent when the recipe has no `mcq_verify` step;
- any other `stats` key a step returns under `summary["stats"]` (e.g. `signal_auroc` from
  the `confidence` step), the last step's value winning.

The rejected dataset (kind "rejected", the rejected schema of the input's codec) has the
same `steps` and counts, and `params["kept_dir"]`: OUT, relative to it.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from distill.curate.base import domain_of
from distill.curate.layout import claim_curate_outputs, rejected_out
from distill.curate.passes import SortedDrops, StepProgress, run_key_passes
from distill.curate.recipe import Recipe, default_recipe
from distill.curate.split import split_rows
from distill.curate.stats import DomainAccuracy, StepStats
from distill.dataset_card import write_card
from distill.engine import LOCAL, EngineConfig, require_ray
from distill.locking import output_lock
from distill.rerun import derived_dataset_id
from distill.schemas import Manifest, schema_for
from distill.store import (
    DEFAULT_BATCH_ROWS,
    DatasetError,
    DatasetWriter,
    iter_batches,
    load_manifest,
    parent_ref,
)
from distill.store.lineage import relative_link

log = logging.getLogger(__name__)

__all__ = ["CurateResult", "DomainAccuracy", "StepProgress", "StepStats", "curate_dataset"]


class CurateResult(BaseModel):
    """What a CLI needs to print: per-step table, where the outputs are, the totals."""

    model_config = ConfigDict(extra="forbid")

    kept_dir: Path
    rejected_dir: Path
    steps: list[StepStats]
    counts: dict[str, int]
    domains_before: dict[str, int]
    domains_after: dict[str, int]
    accuracy_by_domain: dict[str, DomainAccuracy] = Field(default_factory=dict)
    kept_manifest: Manifest
    rejected_manifest: Manifest


def domain_counts(table: pa.Table) -> dict[str, int]:
    counts = Counter(domain_of(d) for d in table.column("domain").to_pylist())
    return dict(sorted(counts.items()))


def _check_columns(input_dir: Path, recipe: Recipe, schema: pa.Schema, codec: str) -> None:
    # A step that names a top-k column of one codec would fail halfway on the other.
    for step in recipe.steps:
        missing = sorted(set(step.read_columns(schema)) - set(schema.names))
        if missing:
            raise DatasetError(
                f"{input_dir}: step {step.name!r} reads {missing}, which a "
                f"{codec} dataset does not have; a step reads the top-k through "
                "`reads_topk` and `decode_topk`"
            )


def _write_rows(
    input_dir: Path,
    schema: pa.Schema,
    drops: SortedDrops,
    step_names: list[str],
    writers: tuple[DatasetWriter, DatasetWriter],
    batch_rows: int,
) -> tuple[Counter[str], Counter[str]]:
    """Stream the input once more: each row to the kept or the rejected writer, in input
    order. Returns the domain counts of the input and of the kept rows."""
    kept_writer, rejected_writer = writers
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    start = 0
    for batch in iter_batches(input_dir, batch_rows, columns=schema.names):
        table = pa.Table.from_batches([batch])
        kept, rejected, domains, keep = split_rows(table, start, drops, step_names)
        before.update(domains)
        after.update(d for d, k in zip(domains, keep, strict=True) if k)
        kept_writer.write(kept)
        rejected_writer.write(rejected)
        start += table.num_rows
    return before, after


def _results(
    num_rows: int, rejected: int, all_stats: list[StepStats], domains: tuple[Counter, Counter]
) -> tuple[dict[str, int], dict[str, Any], dict[str, Any]]:
    """The manifest's counts, its stats (domains, accuracy, step stats) and the accuracy."""
    reason_counts: Counter[str] = Counter()
    for stats in all_stats:
        reason_counts.update(stats.dropped)
    counts = {
        "input": num_rows,
        "kept": num_rows - rejected,
        "rejected": rejected,
        **{f"dropped_{reason}": n for reason, n in sorted(reason_counts.items())},
    }
    accuracy: dict[str, Any] = {}
    for stats in all_stats:
        accuracy = stats.summary.get("accuracy_by_domain", accuracy)
    before, after = domains
    results: dict[str, Any] = {
        "domains_before": dict(sorted(before.items())),
        "domains_after": dict(sorted(after.items())),
    }
    if any(stats.step == "mcq_verify" for stats in all_stats):
        results["accuracy_by_domain"] = accuracy
    for stats in all_stats:
        results.update(stats.summary.get("stats", {}))
    return counts, results, accuracy


def curate_dataset(
    input_dir: Path,
    out_dir: Path,
    recipe: Recipe | None = None,
    progress: StepProgress | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    rejected_dir: Path | None = None,
    engine: EngineConfig = LOCAL,
) -> CurateResult:
    """Apply `recipe` (default: `default_recipe()`) to the dataset in `input_dir`: kept
    rows to `out_dir`, dropped rows to `rejected_dir` (default: `out_dir`'s sibling
    `<name>-rejected`, see `distill.curate.layout`).

    `progress(step, None)` is called as each step starts deciding and `progress(step,
    stats)` as it ends (a display, e.g. `distill.curate.progress.CurateProgress`). Both
    come after the key pass that read the step's keys, where row-local steps (a judge's
    model calls included) do their work; a step's `seconds` counts its share of that pass.
    `batch_rows`: rows read at a time; the outputs do not depend on it. `engine`: this
    process (local) or a Ray cluster (`distill.curate.ray_keys`, `ray_write`): the same
    record ids, reasons, details, steps and counts, the kept and rejected rows written one
    shard per input shard by the workers.
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    recipe = recipe or default_recipe()
    if batch_rows < 1:
        raise ValueError(f"batch_rows must be at least 1, got {batch_rows}")
    rejected_dir = rejected_out(out_dir, rejected_dir)
    if engine.is_ray:
        require_ray()  # before --out is touched: without the extra, nothing is cleared
    parent = load_manifest(input_dir)
    if parent.kind == "rejected":
        raise DatasetError(f"{input_dir}: is a rejected-rows dataset; curate its parent instead")
    with ExitStack() as locks:  # one writer per output, for both outputs
        locks.enter_context(output_lock(out_dir))
        locks.enter_context(output_lock(rejected_dir))
        key = claim_curate_outputs(input_dir, out_dir, rejected_dir, recipe.model_dump(mode="json"))
        return _curate(
            input_dir, (out_dir, rejected_dir), key, recipe, progress, batch_rows, engine
        )


def _curate(
    input_dir: Path,
    outputs: tuple[Path, Path],
    key: str,
    recipe: Recipe,
    progress: StepProgress | None,
    batch_rows: int,
    engine: EngineConfig,
) -> CurateResult:
    out_dir, rejected_dir = outputs
    parent = load_manifest(input_dir)
    schema, rejected_schema = schema_for(parent), schema_for(parent, rejected=True)
    _check_columns(input_dir, recipe, schema, parent.codec)
    # Both writers refuse an output holding another dataset: before any work is done.
    writers = (DatasetWriter(out_dir, schema), DatasetWriter(rejected_dir, rejected_schema))
    num_rows = sum(shard.rows for shard in parent.shards)
    steps = list(recipe.steps)
    if engine.is_ray:  # the same decisions and rows, made and written by Ray workers
        from distill.curate.ray_write import curate_on_ray

        shards = parent.shards
        drops, all_stats, domains = curate_on_ray(
            engine, input_dir, shards, steps, writers, batch_rows, progress
        )
    else:
        drops, all_stats = run_key_passes(input_dir, steps, schema, num_rows, batch_rows, progress)
        names = [s.name for s in steps]
        domains = _write_rows(input_dir, schema, drops, names, writers, batch_rows)
    counts, results, accuracy = _results(num_rows, len(drops.positions), all_stats, domains)
    params: dict[str, Any] = {
        "recipe": recipe.model_dump(mode="json"),
        "rejected_dir": relative_link(out_dir, rejected_dir),
    }
    common: dict[str, Any] = {
        "schema_version": parent.schema_version,
        "codec": parent.codec,
        "targets": parent.targets,
        "teachers": parent.teachers,
        "tokenizer": parent.tokenizer,
        "top_k": parent.top_k,
        "counts": counts,
        "parents": [parent_ref(input_dir)],
        "run_ids": parent.run_ids,
        "steps": [stats.model_dump(mode="json") for stats in all_stats],
        "licenses": parent.licenses,
    }
    back = {"recipe": params["recipe"], "kept_dir": relative_link(rejected_dir, out_dir)}
    rejected_manifest = writers[1].close(
        Manifest(
            kind="rejected", dataset_id=derived_dataset_id(key, "rejected"), params=back, **common
        )
    )
    kept_manifest = writers[0].close(
        Manifest(
            kind="curated",
            dataset_id=derived_dataset_id(key, "curated"),
            params=params,
            stats=results,
            **common,
        )
    )
    for path in (rejected_dir, out_dir):
        write_card(path)  # no clock in it: a rerun writes the same bytes
    return CurateResult(
        kept_dir=out_dir,
        rejected_dir=rejected_dir,
        steps=all_stats,
        counts=counts,
        domains_before=results["domains_before"],
        domains_after=results["domains_after"],
        accuracy_by_domain=accuracy,
        kept_manifest=kept_manifest,
        rejected_manifest=rejected_manifest,
    )
