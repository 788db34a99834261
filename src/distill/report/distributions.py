"""The report's distributions, from one streamed pass over a curated dataset and its
rejected rows (or a generated dataset): response lengths, per-token teacher entropy, and
the confidence signals of right and wrong answers with their AUROC.

Kept and rejected rows together are exactly the rows curation read, so the signals and
their AUROC describe the teacher's answers before any filter, the way the `confidence`
step measures them. Memory holds one batch and a few numbers per row (the compact keys
curation's passes hold too); the per-token entropies are counted into fixed bins as they
stream, never stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.codec import decode_topk
from distill.curate.signals import (
    extracted_letters,
    is_wrong,
    mean_entropy,
    min_logprob,
    signal_aurocs,
    with_self_consistency,
)
from distill.report.rows import KEPT_GROUP, token_entropy
from distill.schemas.arrow import topk_columns
from distill.store import iter_batches, load_manifest
from distill.store.lineage import rejected_path

ENTROPY_BINS = 40
SIGNAL_COLUMNS = ["prompt_id", "response_text", "reference", "token_ids", "sampled_logprob"]


@dataclass
class GroupDistribution:
    """One group's (kept, rejected, generated) figures."""

    lengths: list[np.ndarray] = field(default_factory=list)  # response tokens per row
    entropy_counts: np.ndarray | None = None  # per-token entropy, counted in `entropy_edges`

    def length_array(self) -> np.ndarray:
        return np.concatenate(self.lengths) if self.lengths else np.zeros(0, np.int64)


@dataclass
class Distributions:
    entropy_edges: np.ndarray
    groups: dict[str, GroupDistribution]
    signals: dict[str, np.ndarray]  # per row of every group, in read order
    wrong: np.ndarray  # 1 wrong, 0 right, NaN ungraded, aligned with `signals`
    aurocs: dict[str, dict[str, Any]]


@dataclass
class _Keys:
    """The compact per-row keys the pass collects for the signals."""

    per_row: dict[str, list[np.ndarray]] = field(default_factory=dict)
    answers: list[str | None] = field(default_factory=list)
    prompt_ids: list[pa.ChunkedArray] = field(default_factory=list)
    wrong: list[np.ndarray] = field(default_factory=list)


def entropy_edges(top_k: int) -> np.ndarray:
    """Fixed bins over [0, log(k + 1)]: the top-k plus the tail bucket can't exceed it."""
    return np.linspace(0.0, math.log(top_k + 1), ENTROPY_BINS + 1)


def _scan(
    dataset: Path, group: GroupDistribution, keys: _Keys, edges: np.ndarray, letters: str
) -> None:
    manifest = load_manifest(dataset)
    columns = SIGNAL_COLUMNS + topk_columns(manifest)
    for batch in iter_batches(dataset, columns=columns):
        table = pa.Table.from_batches([batch])
        topk = decode_topk(table)  # once per batch, for the histogram and the signal
        group.lengths.append(pc.list_value_length(table.column("token_ids")).to_numpy())
        counts, _ = np.histogram(np.clip(token_entropy(topk), 0, edges[-1]), edges)
        group.entropy_counts = (
            counts if group.entropy_counts is None else group.entropy_counts + counts
        )
        keys.per_row.setdefault("mean_entropy", []).append(mean_entropy(topk))
        keys.per_row.setdefault("min_logprob", []).append(
            min_logprob(table.column("sampled_logprob"))
        )
        responses = table.column("response_text").to_pylist()
        keys.answers.extend(extracted_letters(responses, letters))
        keys.prompt_ids.append(table.column("prompt_id"))  # Arrow strings: compact
        keys.wrong.append(is_wrong(responses, table.column("reference").to_pylist(), letters))


def collect_distributions(dataset: Path, top_k: int, letters: str = "ABCD") -> Distributions:
    """Stream `dataset` (and its rejected rows, if curated) into the report's distributions."""
    dataset = Path(dataset)
    manifest = load_manifest(dataset)
    sources = [(KEPT_GROUP if manifest.kind == "curated" else manifest.kind, dataset)]
    rejected = rejected_path(dataset, manifest)
    if rejected is not None:
        sources.append(("rejected", rejected))
    edges = entropy_edges(top_k)
    keys, groups = _Keys(), {}
    for name, path in sources:
        groups[name] = GroupDistribution()
        _scan(path, groups[name], keys, edges, letters)
    per_row = {name: np.concatenate(parts) for name, parts in keys.per_row.items()}
    prompt_ids = [i for chunk in keys.prompt_ids for i in chunk.to_pylist()]
    signals = with_self_consistency(per_row, prompt_ids, keys.answers) if prompt_ids else {}
    wrong = np.concatenate(keys.wrong) if keys.wrong else np.zeros(0)
    graded = bool(wrong.size) and not np.isnan(wrong).all()
    return Distributions(
        entropy_edges=edges,
        groups=groups,
        signals=signals,
        wrong=wrong,
        aurocs=signal_aurocs(signals, wrong) if graded else {},
    )


def right_and_wrong(dist: Distributions, signal: str) -> dict[str, np.ndarray]:
    """A signal's values split into the rows answered right and wrong (ungraded left out)."""
    values = dist.signals[signal]
    return {"right": values[dist.wrong == 0], "wrong": values[dist.wrong == 1]}
