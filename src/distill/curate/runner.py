"""Run a recipe over a dataset: kept rows to OUT, every dropped row to OUT/rejected.

Steps only decide; this module does the I/O, the selection and the bookkeeping. Rows
are selected with pyarrow (`filter` / `take`), so the top-k payload of a kept row is the
same Arrow data it was in the input and stays aligned with its record. Kept and rejected
rows are both written in input order, and nothing here depends on time or randomness,
so re-running on the same input writes byte-identical shards. The same command run again
on its own OUT (after a kill, or after it finished) clears it and redoes the job
(`distill.rerun`); the input's shards are checked against its manifest as they are read.
The rejected dataset is written first and the kept manifest last, so a complete
`OUT/manifest.json` means the whole job finished. Per-run fields of the manifests:
`created_at` and each step's `seconds`.

What the kept dataset's manifest records (a report reads these keys):

- `steps`: one entry per step — {step, params, input, kept, dropped: {reason: count},
  seconds, summary};
- `counts`: `input`, `kept`, `rejected`, `dropped_<reason>` for every reason seen, and
  `rows` (= kept, filled by the store);
- `params["recipe"]`: the recipe as run; `params["rejected_dir"]`: "rejected";
- `stats["domains_before"]` / `stats["domains_after"]`: {domain: rows} of the input and
  of the kept rows, a null domain counted as "unknown";
- `stats["accuracy_by_domain"]`: {domain: {graded, correct, accuracy}} over the rows that
  reached `mcq_verify` with a letter reference (no answer found counts as incorrect);
  absent when the recipe has no `mcq_verify` step;
- any other `stats` key a step returns under `summary["stats"]` (e.g. `signal_auroc` from
  the `confidence` step), the last step's value winning.

The rejected dataset (kind "rejected", the rejected schema of the input's codec) has the
same `steps` and counts.
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
from pydantic import BaseModel, ConfigDict, Field

from distill.curate.base import Decisions, Step, domain_of
from distill.curate.recipe import Recipe, default_recipe
from distill.dataset_card import write_card
from distill.locking import locks_output
from distill.rerun import claim_output, derived_dataset_id, job_key
from distill.schemas import Manifest, codec_of, schema_for
from distill.store import (
    DatasetError,
    load_manifest,
    parent_ref,
    read_table,
    write_dataset,
)

log = logging.getLogger(__name__)

REJECTED_SUBDIR = "rejected"


class StepStats(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: str
    params: dict[str, Any] = Field(default_factory=dict)
    input: int
    kept: int
    dropped: dict[str, int] = Field(default_factory=dict, description="reason -> rows")
    seconds: float
    summary: dict[str, Any] = Field(default_factory=dict, description="e.g. accuracy_by_domain")


class DomainAccuracy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    graded: int
    correct: int
    accuracy: float


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
    if out_dir.resolve() == input_dir.resolve():
        raise DatasetError(f"{out_dir}: the output must differ from the input dataset")
    key = job_key("curate", input_dir, recipe.model_dump(mode="json"))
    claim_output(out_dir, "curate", key, [out_dir, out_dir / REJECTED_SUBDIR])
    return key


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
def curate_dataset(
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
        "rejected_dir": REJECTED_SUBDIR,
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
    rejected_dir = out_dir / REJECTED_SUBDIR
    rejected_manifest = write_dataset(
        rejected_dir,
        rejected_all,
        schema_for(parent, rejected=True),
        Manifest(
            kind="rejected",
            dataset_id=derived_dataset_id(key, "rejected"),
            params={"recipe": params["recipe"], "kept_dir": ".."},
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
    write_card(out_dir)  # no clock in it: a rerun writes the same bytes
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
