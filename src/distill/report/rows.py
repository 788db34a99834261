"""The row browser's data: a deterministic sample of kept rows and of rejected rows per
reason, each response token with the teacher's entropy, log-prob and top-k alternatives.

The sample is bounded and streamed. A first pass reads only `record_id` (and
`reject_reason`) a batch at a time and keeps, per group, the `per_group` rows whose
salted hash of the record id is smallest: the same rows on every run, whatever the shard
layout, and an unbiased pick within each group. A second pass keeps just those rows of
each batch, so memory holds one batch and the sample, never a whole dataset. Both codecs
read the same: the top-k is decoded with `distill.codec.decode_topk`.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.codec import TopK, decode_topk
from distill.store import iter_batches, load_manifest
from distill.store.lineage import rejected_path

KEPT_GROUP = "kept"
SAMPLE_SALT = "distill-report"


@dataclass(frozen=True)
class SampleConfig:
    per_group: int = 8  # rows shown for the kept rows and for each reject reason
    max_tokens: int = 160  # response tokens shown per row (the rest is cut, and says so)
    top_alternatives: int = 8  # top-k entries shown on hover


def sample_key(record_id: str) -> int:
    """The order rows are sampled in: a salted hash, so the pick does not follow row order."""
    digest = hashlib.blake2b(f"{SAMPLE_SALT}:{record_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def _group_ids(batch: pa.RecordBatch, group_column: str | None) -> Iterator[tuple[str, str]]:
    ids = batch.column("record_id").to_pylist()
    groups = batch.column(group_column).to_pylist() if group_column else [KEPT_GROUP] * len(ids)
    return zip(groups, ids, strict=True)


def choose_sample(dataset: Path, per_group: int, group_column: str | None) -> dict[str, list[str]]:
    """group -> the record ids of its sample: the `per_group` smallest keys, smallest first."""
    if per_group <= 0:
        return {}
    columns = ["record_id"] + ([group_column] if group_column else [])
    # per group, a heap of (-key, id): its top is the largest key kept, the one to evict
    heaps: dict[str, list[tuple[int, str]]] = {}
    for batch in iter_batches(dataset, columns=columns):
        for group, record_id in _group_ids(batch, group_column):
            heap = heaps.setdefault(group, [])
            entry = (-sample_key(record_id), record_id)
            if len(heap) < per_group:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    return {
        group: [rid for _, rid in sorted(heap, reverse=True)]
        for group, heap in sorted(heaps.items())
    }


def read_sample(dataset: Path, record_ids: set[str]) -> pa.Table | None:
    """The rows of `dataset` whose record id is in `record_ids`, every column, streamed."""
    wanted = pa.array(sorted(record_ids), pa.string())
    found = []
    for batch in iter_batches(dataset):
        mask = pc.is_in(batch.column("record_id"), value_set=wanted)
        if pc.any(mask).as_py():
            found.append(batch.filter(mask))
    return pa.Table.from_batches(found) if found else None


def token_entropy(topk: TopK) -> np.ndarray:
    """Per response token, the entropy (nats) of its top-k plus one bucket for the tail
    mass, as the `mean_entropy` signal averages it: -sum p log p - t log t. Each token is
    summed on its own row of the padded top-k, so its value never depends on the tokens
    before it in the batch."""
    _, logprobs, mask = topk.padded()
    logp = logprobs.astype(np.float64)
    terms = np.where(mask & (logp > -np.inf), -np.exp(logp) * np.where(mask, logp, 0.0), 0.0)
    tail = np.clip(topk.tail.astype(np.float64), 0.0, 1.0)
    safe = np.where(tail > 0, tail, 1.0)
    return terms.sum(axis=1) + np.where(tail > 0, -tail * np.log(safe), 0.0)


def _row_views(table: pa.Table, config: SampleConfig) -> list[dict[str, Any]]:
    topk = decode_topk(table)
    ids, logprobs, mask = topk.padded()
    entropy = token_entropy(topk)
    starts = np.concatenate([[0], np.cumsum(topk.tokens_per_row)])
    rows = []
    for r, row in enumerate(table.select(_TEXT_COLUMNS).to_pylist()):
        lo, n = int(starts[r]), int(topk.tokens_per_row[r])
        shown = min(n, config.max_tokens)
        tokens = []
        for t in range(lo, lo + shown):
            probs = np.exp(logprobs[t][mask[t]].astype(np.float64))
            order = np.argsort(-probs, kind="stable")[: config.top_alternatives]
            alts = [[int(ids[t][mask[t]][j]), float(probs[j])] for j in order]
            tokens.append(
                {
                    "id": int(row["token_ids"][t - lo]),
                    "entropy": float(entropy[t]),
                    "logprob": float(row["sampled_logprob"][t - lo]),
                    "tail": float(topk.tail[t]),
                    "top": alts,
                    # the top-k entries not shown, summed into one line of the hover box
                    "rest": float(probs.sum() - probs[order].sum()),
                }
            )
        rows.append(_row_summary(row, tokens, cut=n - shown))
    return rows


_TEXT_COLUMNS = [
    "record_id", "prompt_id", "domain", "reference", "messages", "response_text",
    "token_ids", "sampled_logprob", "finish_reason",
]  # fmt: skip


def _row_summary(row: dict[str, Any], tokens: list[dict[str, Any]], cut: int) -> dict[str, Any]:
    prompt = next((m["content"] for m in reversed(row["messages"]) if m["role"] == "user"), "")
    return {
        "record_id": row["record_id"],
        "domain": row["domain"],
        "reference": row["reference"],
        "prompt": prompt,
        "response": row["response_text"],
        "finish_reason": row["finish_reason"],
        "tokens": tokens,
        "tokens_cut": cut,
        "reason": None,  # a rejected row's step, reason and details: see _sample_group_rows
        "step": None,
        "details": None,
    }


def _sample_group_rows(
    dataset: Path, group_column: str | None, config: SampleConfig
) -> dict[str, list[dict[str, Any]]]:
    chosen = choose_sample(dataset, config.per_group, group_column)
    table = read_sample(dataset, {rid for ids in chosen.values() for rid in ids})
    if table is None:
        return {}
    views = _row_views(table, config)
    if group_column:  # a rejected row says which step dropped it, and why
        extra = table.select(["reject_reason", "reject_step", "reject_details"]).to_pylist()
        for view, why in zip(views, extra, strict=True):
            view.update(
                reason=why["reject_reason"],
                step=why["reject_step"],
                details=json.loads(why["reject_details"] or "{}"),
            )
    by_id = {view["record_id"]: view for view in views}
    return {group: [by_id[rid] for rid in ids if rid in by_id] for group, ids in chosen.items()}


def sample_rows(dataset: Path, config: SampleConfig | None = None) -> dict[str, list[dict]]:
    """The browser's sample of a dataset: `kept` (its rows), then one group per reject
    reason when it is a curated dataset with rejected rows. Groups in that order."""
    config = config or SampleConfig()
    dataset = Path(dataset)
    groups = _sample_group_rows(dataset, None, config)
    manifest = load_manifest(dataset)
    rejected = rejected_path(dataset, manifest)
    if rejected is not None:
        groups.update(_sample_group_rows(rejected, "reject_reason", config))
    if manifest.kind != "curated" and KEPT_GROUP in groups:
        groups[manifest.kind] = groups.pop(KEPT_GROUP)  # a generated dataset's rows: not "kept"
    return groups
