"""Which training runs used a row: runs (`lineage.json`, `distill.run_lineage`) found beside
the audited dataset or in folders given, whose data is related to it (the dataset itself,
one above it in its lineage, or one made from it) and holds the row's record id; a run
used the row unless it held the row's prompt out.

Membership is checked by record id in the run's dataset, not inferred from the lineage:
a curated copy lacks the rows it dropped, and `distill score` makes new record ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from distill.run_lineage import LINEAGE_NAME, RunLineage, read_run_lineage
from distill.store import MANIFEST_NAME, load_manifest
from distill.store.lineage import Lineage, lineage


@dataclass
class RunData:
    """A training run and the dataset it trained on, where that dataset is now."""

    run_dir: Path
    run: RunLineage
    dataset: Path


def training_data(run_dirs: list[Path], chain: Lineage) -> list[RunData]:
    """The runs whose data is related to the audited dataset (`chain`'s first link):
    trained on it, on a dataset above it, or on one made from it."""
    paths = {link.manifest.dataset_id: link.path for link in chain.links}
    start = chain.links[0].manifest.dataset_id
    found = []
    for run_dir in run_dirs:
        run = read_run_lineage(run_dir)
        if run is None:
            continue
        dataset = paths.get(run.dataset_id)
        if dataset is None and _made_from(Path(run.dataset), run.dataset_id, start):
            dataset = Path(run.dataset)
        if dataset is not None:
            found.append(RunData(run_dir, run, dataset))
    return found


def _made_from(dataset: Path, dataset_id: str, ancestor_id: str) -> bool:
    """`dataset` is still the one with `dataset_id`, and `ancestor_id` is in its lineage."""
    if not (dataset / MANIFEST_NAME).is_file():
        return False
    links = lineage(dataset).links
    return links[0].manifest.dataset_id == dataset_id and any(
        link.manifest.dataset_id == ancestor_id for link in links
    )


def _response_tokens(
    connection: duckdb.DuckDBPyConnection, dataset: Path, record_id: str
) -> int | None:
    """The row's response length in `dataset`, or None if the dataset does not hold it."""
    files = [str(dataset / shard.file) for shard in load_manifest(dataset).shards]
    if not files:
        return None
    query = "SELECT len(token_ids) FROM read_parquet(?) WHERE record_id = ? LIMIT 1"
    found = connection.sql(query, params=[files, record_id]).fetchall()
    return int(found[0][0] or 0) if found else None


def runs_holding(
    row: dict[str, Any], runs: list[RunData], connection: duckdb.DuckDBPyConnection
) -> list:
    """The runs whose data holds the row (checked by record id): used unless its prompt
    was held out, or its response is empty (training skips a row with nothing to learn)."""
    found = []
    for data in runs:
        tokens = _response_tokens(connection, data.dataset, row["record_id"])
        if tokens is None:
            continue
        held_out = row["prompt_id"] in set(data.run.heldout_prompt_ids)
        found.append(
            {
                "run_dir": str(data.run_dir),
                "mode": data.run.mode,
                "dataset_id": data.run.dataset_id,
                "used": not held_out and tokens > 0,
                "held_out": held_out,
                "empty_response": tokens == 0,
            }
        )
    return found


def candidate_runs(dataset: Path, extra: list[Path]) -> list[Path]:
    """Training run folders to look at: the dataset's siblings, plus `extra` (runs, or
    folders of runs)."""
    found: list[Path] = []
    for folder in [Path(dataset).resolve().parent, *map(Path, extra)]:
        for path in [folder, *sorted(p for p in folder.iterdir() if p.is_dir())]:
            if (path / LINEAGE_NAME).is_file() and path not in found:
                found.append(path)
    return found
