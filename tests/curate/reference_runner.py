"""The in-memory curation runner, as it was before curation streamed: the reference that
`distill.curate.runner` (the streaming runner) is tested against
(tests/curate/test_streaming_runner.py). It reads the whole input with `read_table` and
runs each step's `decide` on the whole table of surviving rows. Kept as the reference until
the streaming runner has replaced it for a while; not used by distill itself.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from distill.curate.base import Decisions, Step, domain_of
from distill.curate.layout import claim_curate_outputs, rejected_out
from distill.curate.recipe import Recipe, default_recipe
from distill.curate.runner import CurateResult, StepStats
from distill.locking import locks_output
from distill.rerun import derived_dataset_id
from distill.schemas import Manifest, codec_of, schema_for
from distill.store import (
    DatasetError,
    load_manifest,
    parent_ref,
    read_table,
    write_dataset,
)
from distill.store.lineage import relative_link

log = logging.getLogger(__name__)


def domain_counts(table: pa.Table) -> dict[str, int]:
    counts = Counter(domain_of(d) for d in table.column("domain").to_pylist())
    return dict(sorted(counts.items()))


def _rejected_rows(table: pa.Table, step: Step, drops: Decisions) -> pa.Table:
    """`table` (the dropped rows) plus the three reject columns."""
    reasons = [d.reason.value for d in drops if d is not None]
    details = [json.dumps(d.details, sort_keys=True) for d in drops if d is not None]
    extra = {
        "reject_step": pa.array([step.name] * len(reasons), pa.string()),
        "reject_reason": pa.array(reasons, pa.string()),
        "reject_details": pa.array(details, pa.string()),
    }
    for field in schema_for(table, rejected=True):
        if field.name in extra:
            table = table.append_column(field, extra[field.name])
    return table


def _claim_out(input_dir: Path, out_dir: Path, recipe: Recipe) -> str:
    """Fail before any work on an --out that holds another dataset; clear an earlier run
    of this same job. Returns the job's key."""
    settings = recipe.model_dump(mode="json")
    return claim_curate_outputs(input_dir, out_dir, rejected_out(out_dir), settings)


def _check_columns(input_dir: Path, recipe: Recipe, table: pa.Table) -> None:
    # A step that names a top-k column of one codec would fail halfway on the other.
    for step in recipe.steps:
        missing = sorted(set(step.input_columns(table)) - set(table.column_names))
        if missing:
            raise DatasetError(
                f"{input_dir}: step {step.name!r} reads {missing}, which a "
                f"{codec_of(table)} dataset does not have; a step reads the top-k through "
                "`reads_topk` and `decode_topk`"
            )


def _apply_step(
    step: Step, table: pa.Table, positions: np.ndarray
) -> tuple[pa.Table, np.ndarray, pa.Table, np.ndarray, StepStats]:
    """Run one step: (kept, kept positions, rejected, rejected positions, stats)."""
    started = time.perf_counter()
    decisions = step.decide(table) if table.num_rows else []
    summary = step.summarize(table, decisions)
    keep = np.fromiter((d is None for d in decisions), dtype=bool, count=len(decisions))
    dropped_at = np.flatnonzero(~keep)
    rejected = _rejected_rows(table.take(dropped_at), step, [decisions[i] for i in dropped_at])
    kept = table.filter(pa.array(keep, pa.bool_()))
    stats = StepStats(
        step=step.name,
        params=step.params(),
        input=table.num_rows,
        kept=kept.num_rows,
        dropped=dict(sorted(Counter(decisions[i].reason.value for i in dropped_at).items())),
        seconds=round(time.perf_counter() - started, 4),
        summary=summary,
    )
    log.info("%s: %d in, %d kept, dropped %s", step.name, stats.input, stats.kept, stats.dropped)
    return kept, positions[keep], rejected, positions[dropped_at], stats


StepProgress = Callable[[Step, "StepStats | None"], None]


def _run_steps(
    recipe: Recipe, table: pa.Table, rejected_schema: pa.Schema, progress: StepProgress | None
) -> tuple[pa.Table, pa.Table, list[StepStats]]:
    """(kept rows, rejected rows in input order whichever step dropped them, step stats)."""
    kept, positions = table, np.arange(table.num_rows)
    rejected_parts: list[pa.Table] = []
    rejected_positions: list[np.ndarray] = []
    all_stats: list[StepStats] = []
    for step in recipe.steps:
        if progress is not None:
            progress(step, None)
        kept, positions, rejected, dropped_positions, stats = _apply_step(step, kept, positions)
        if progress is not None:
            progress(step, stats)
        rejected_parts.append(rejected)
        rejected_positions.append(dropped_positions)
        all_stats.append(stats)
    if not rejected_parts:
        return kept, rejected_schema.empty_table(), all_stats
    order = np.argsort(np.concatenate(rejected_positions), kind="stable")
    return kept, pa.concat_tables(rejected_parts).take(order), all_stats


def _results(
    table: pa.Table, kept: pa.Table, rejected: pa.Table, all_stats: list[StepStats]
) -> tuple[dict[str, int], dict[str, Any], dict[str, Any]]:
    """The manifest's counts, its stats (domains, accuracy, step stats) and the accuracy."""
    reason_counts: Counter[str] = Counter()
    for stats in all_stats:
        reason_counts.update(stats.dropped)
    counts = {
        "input": table.num_rows,
        "kept": kept.num_rows,
        "rejected": rejected.num_rows,
        **{f"dropped_{reason}": n for reason, n in sorted(reason_counts.items())},
    }
    accuracy: dict[str, Any] = {}
    for stats in all_stats:
        accuracy = stats.summary.get("accuracy_by_domain", accuracy)
    results: dict[str, Any] = {
        "domains_before": domain_counts(table),
        "domains_after": domain_counts(kept),
    }
    if any(stats.step == "mcq_verify" for stats in all_stats):
        results["accuracy_by_domain"] = accuracy
    for stats in all_stats:
        results.update(stats.summary.get("stats", {}))
    return counts, results, accuracy


@locks_output("out_dir")
def reference_curate_dataset(
    input_dir: Path,
    out_dir: Path,
    recipe: Recipe | None = None,
    progress: StepProgress | None = None,
) -> CurateResult:
    """Apply `recipe` (default: `default_recipe()`) to the dataset in `input_dir`.

    `progress(step, None)` is called as each step starts and `progress(step, stats)` as it
    ends (a display, e.g. `distill.curate.progress.CurateProgress`).
    """
    input_dir, out_dir = Path(input_dir), Path(out_dir)
    recipe = recipe or default_recipe()
    parent = load_manifest(input_dir)
    if parent.kind == "rejected":
        raise DatasetError(f"{input_dir}: is a rejected-rows dataset; curate its parent instead")
    key = _claim_out(input_dir, out_dir, recipe)
    table = read_table(input_dir).select(schema_for(parent).names)
    _check_columns(input_dir, recipe, table)
    rejected_schema = schema_for(parent, rejected=True)
    kept, rejected_all, all_stats = _run_steps(recipe, table, rejected_schema, progress)
    counts, results, accuracy = _results(table, kept, rejected_all, all_stats)
    params: dict[str, Any] = {
        "recipe": recipe.model_dump(mode="json"),
        "rejected_dir": relative_link(out_dir, rejected_out(out_dir)),
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
    }
    rejected_dir = rejected_out(out_dir)
    rejected_manifest = write_dataset(
        rejected_dir,
        rejected_all,
        schema_for(parent, rejected=True),
        Manifest(
            kind="rejected",
            dataset_id=derived_dataset_id(key, "rejected"),
            params={"recipe": params["recipe"], "kept_dir": relative_link(rejected_dir, out_dir)},
            **common,
        ),
    )
    kept_manifest = write_dataset(
        out_dir,
        kept,
        schema_for(parent),
        Manifest(
            kind="curated",
            dataset_id=derived_dataset_id(key, "curated"),
            params=params,
            stats=results,
            **common,
        ),
    )
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
