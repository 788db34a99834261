"""`near_dedup` on Ray: the decisions of `NearDedup.decide_keys`, made by shuffles.

A local run shingles each distinct text, drops the shingles found in too many distinct
texts, signs every text, buckets the signatures per LSH band, checks each candidate pair's
estimated Jaccard and visits the rows in keep order (`keep_policy.keep_pass`). Here:

1. rows are grouped by their text (a shuffle on a hash of it); a text's id is the input
   position of its first row, so ids sort as a local run numbers its distinct texts;
2. the texts per shingle are counted by a shuffle (when common shingles are dropped) and
   the few common ones broadcast;
3. workers sign the distinct texts in blocks (the same seeded hash family);
4. a shuffle on (band, bucket) finds the texts that share a bucket, with the same bucket
   bits as the local sort; a second one, of only those texts with their signatures,
   makes and checks each candidate pair as the local step does;
5. only the rows `keep_pass` would look at come back to the driver: rows of a text in a
   similar pair or of a text several rows share. Every other row is kept without a look,
   locally as well, so the driver resolves keep-first (or the other keep policies) on
   exactly the rows and pairs a local run visits, in the same order.

Driver memory: the common shingle hashes (8 B each), the candidate text ids (8 B per text
sharing a bucket), the similar pairs (24 B each) and the rows of step 5 (their record and
prompt ids): all proportional to the duplicates, none to the input.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from distill.curate.dedup import NearDedup
from distill.curate.dedup.keep_policy import keep_pass, priority_order
from distill.curate.dedup.shingles import shingle_pairs
from distill.curate.passes import Drops, record_decisions
from distill.curate.ray_blocks import collect, step_rows
from distill.curate.stats import StepStats

_PAIRS = pa.schema([("i", pa.int64()), ("j", pa.int64()), ("jaccard", pa.float64())])
_IDS = pa.schema([("text_id", pa.int64())])


def _with_text_hash(batch: pa.Table) -> pa.Table:
    hashes = [
        int.from_bytes(
            hashlib.blake2b(text.encode(), digest_size=8).digest(), "little", signed=True
        )
        for text in batch.column("text").to_pylist()
    ]
    return batch.append_column("text_hash", pa.array(hashes, pa.int64()))


def _name_texts(group: pa.Table) -> pa.Table:
    """Ray task: each row's text id (its text's first position) and its text's row count;
    the text itself stays on the text's first row only."""
    group = group.sort_by("position")
    texts, positions = group.column("text").to_pylist(), group.column("position").to_pylist()
    first: dict[str, int] = {}
    ids = [
        first.setdefault(text, position) for text, position in zip(texts, positions, strict=True)
    ]
    counts = Counter(ids)
    leader = [text_id == position for text_id, position in zip(ids, positions, strict=True)]
    return (
        group.drop_columns(["text", "text_hash"])
        .append_column("text_id", pa.array(ids, pa.int64()))
        .append_column("rows_of_text", pa.array([counts[i] for i in ids], pa.int64()))
        .append_column(
            "text",
            pa.array(
                [t if lead else None for t, lead in zip(texts, leader, strict=True)], pa.string()
            ),
        )
    )


def _distinct(batch: pa.Table) -> pa.Table:
    return batch.filter(pc.is_valid(batch.column("text"))).select(["text_id", "text"])


def _shingle_counts(batch: pa.Table, step: NearDedup) -> pa.Table:
    """Ray task: distinct texts per shingle hash, within this block."""
    _, hashes = shingle_pairs(batch.column("text").to_pylist(), step.shingle, step.ngram, True)
    values, counts = np.unique(hashes.astype(np.int64), return_counts=True)
    return pa.table({"hash": values, "texts": counts.astype(np.int64)})


def _signatures(batch: pa.Table, step: NearDedup, common: list[Any]) -> pa.Table:
    """Ray task: (text_id, signature) of each text left with a shingle (usable)."""
    import ray

    texts = batch.column("text").to_pylist()
    text_of, hashes = shingle_pairs(texts, step.shingle, step.ngram, distinct=bool(common))
    if common:
        frequent = ray.get(common[0])
        keep = ~np.isin(hashes, frequent)
        text_of, hashes = text_of[keep], hashes[keep]
    usable = np.zeros(len(texts), dtype=bool)
    usable[text_of] = True
    signatures = step.lsh().signatures(text_of, hashes, len(texts))[usable]
    width = signatures.shape[1] * 4
    return pa.table(
        {
            "text_id": batch.column("text_id").filter(pa.array(usable)),
            "signature": pa.FixedSizeBinaryArray.from_buffers(
                pa.binary(width), len(signatures), [None, pa.py_buffer(signatures.tobytes())]
            ),
        }
    )


def _matrix(column: pa.ChunkedArray | pa.Array, width: int) -> np.ndarray:
    """A fixed-size binary column of signatures as a (rows, num_perm) uint32 matrix."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    raw = np.frombuffer(array.buffers()[1], dtype=np.uint8)
    raw = raw[array.offset * width * 4 : (array.offset + len(array)) * width * 4]
    return raw.view(np.uint32).reshape(len(array), width)


def _band_rows(
    batch: pa.Table, step: NearDedup, index_bits: int, only: list[Any] | None
) -> pa.Table:
    """Ray task: a row per (text, band) with the band's bucket; `only`: those texts, with
    their signature."""
    import ray

    if only is not None:
        batch = batch.filter(
            pa.array(np.isin(batch.column("text_id").to_numpy(), ray.get(only[0])))
        )
    lsh = step.lsh()
    buckets = lsh.bucket_keys(
        _matrix(batch.column("signature"), step.num_perm), np.uint64(index_bits)
    )
    columns: dict[str, Any] = {
        "band": np.repeat(np.arange(lsh.bands, dtype=np.int64), batch.num_rows),
        "bucket": buckets.ravel().view(np.int64),
        "text_id": np.tile(batch.column("text_id").to_numpy(), lsh.bands),
    }
    if only is not None:
        columns["signature"] = pa.concat_arrays(
            [batch.column("signature").combine_chunks()] * lsh.bands
        )
    return pa.table(columns)


def _bucket_members(group: pa.Table) -> pa.Table:
    ids = group.column("text_id") if group.num_rows > 1 else pa.array([], pa.int64())
    return pa.table({"text_id": ids}, schema=_IDS)


def _verified_pairs(group: pa.Table, step: NearDedup) -> pa.Table:
    """Ray task: one bucket's pairs i < j with their estimated Jaccard, those that reach the
    threshold (the check `BatchMinHashLSH.similar_pairs` makes)."""
    group = group.sort_by("text_id")
    ids = group.column("text_id").to_numpy()
    i, j = np.triu_indices(len(ids), k=1)
    signatures = _matrix(group.column("signature"), step.num_perm)
    jaccard = (signatures[i] == signatures[j]).mean(axis=1) if len(i) else np.zeros(0)
    keep = jaccard >= step.threshold
    return pa.table({"i": ids[i][keep], "j": ids[j][keep], "jaccard": jaccard[keep]}, schema=_PAIRS)


def _selected(batch: pa.Table, ids: list[Any], repeated: bool) -> pa.Table:
    """Ray task: rows whose text is in `ids` (or, with `repeated`, shared by several rows)."""
    import ray

    wanted = np.isin(batch.column("text_id").to_numpy(), ray.get(ids[0]))
    if repeated:
        wanted |= batch.column("rows_of_text").to_numpy() > 1
    return batch.filter(pa.array(wanted))


def _similar_pairs(
    ray: Any, step: NearDedup, distinct: Any, num_distinct: int
) -> tuple[pa.Table, Any]:
    """The similar pairs of distinct texts (sorted i < j, each once) and the signatures."""
    common: list[Any] = []
    if step.max_shingle_share is not None and num_distinct >= 10:
        counts = distinct.map_batches(
            _shingle_counts, batch_format="pyarrow", fn_kwargs={"step": step}
        )
        totals = collect(
            counts.groupby("hash").sum("texts"),
            pa.schema([("hash", pa.int64()), ("sum(texts)", pa.int64())]),
        )
        limit = step.common_limit(num_distinct)
        frequent = totals.filter(pc.greater(totals.column("sum(texts)"), limit)).column("hash")
        common = [ray.put(np.sort(frequent.to_numpy().view(np.uint64)))]
    signatures = distinct.map_batches(
        _signatures, batch_format="pyarrow", fn_kwargs={"step": step, "common": common}
    ).materialize()
    usable = signatures.count()
    if usable < 2:
        return _PAIRS.empty_table(), signatures
    task = {"step": step, "index_bits": (usable - 1).bit_length()}
    bands = signatures.map_batches(
        _band_rows, batch_format="pyarrow", fn_kwargs={**task, "only": None}
    )
    members = bands.groupby(["band", "bucket"]).map_groups(_bucket_members, batch_format="pyarrow")
    candidates = np.unique(collect(members, _IDS).column("text_id").to_numpy())
    if not len(candidates):
        return _PAIRS.empty_table(), signatures
    only = [ray.put(candidates)]
    bands = signatures.map_batches(
        _band_rows, batch_format="pyarrow", fn_kwargs={**task, "only": only}
    )
    checked = bands.groupby(["band", "bucket"]).map_groups(
        _verified_pairs, batch_format="pyarrow", fn_kwargs={"step": step}
    )
    pairs = collect(checked, _PAIRS).sort_by([("i", "ascending"), ("j", "ascending")])
    i, j = pairs.column("i").to_numpy(), pairs.column("j").to_numpy()
    first = (
        np.concatenate(([True], (i[1:] != i[:-1]) | (j[1:] != j[:-1])))
        if len(i)
        else np.zeros(0, bool)
    )
    return pairs.filter(pa.array(first)), signatures


def near_on_ray(
    ray: Any, step: NearDedup, index: int, keys_ds: Any, alive: np.ndarray, drops: Drops
) -> StepStats:
    """Decide `near_dedup` with shuffles; book its drops like `resolve`."""
    started = time.perf_counter()
    rows, worker_seconds = step_rows(ray, keys_ds, index, alive)
    count = rows.count()
    positions, dropped = np.zeros(0, dtype=np.int64), []
    if count:
        texted = rows.map_batches(_with_text_hash, batch_format="pyarrow").groupby("text_hash")
        texted = texted.map_groups(_name_texts, batch_format="pyarrow").materialize()
        distinct = texted.map_batches(_distinct, batch_format="pyarrow").materialize()
        pairs, signatures = _similar_pairs(ray, step, distinct, distinct.count())
        positions, dropped = _keep_pass_on_driver(ray, step, texted, signatures, pairs)
    seconds = worker_seconds + time.perf_counter() - started
    # near_dedup summarises nothing (`Step.summarize`), locally either.
    return record_decisions(step, index, (count, positions, dropped), {}, seconds, alive, drops)


def _keep_pass_on_driver(
    ray: Any, step: NearDedup, texted: Any, signatures: Any, pairs: pa.Table
) -> tuple[np.ndarray, list[Any]]:
    """The drops of `keep_pass` over the rows it would visit (see the module docstring)."""
    paired = np.unique(np.concatenate([pairs.column("i").to_numpy(), pairs.column("j").to_numpy()]))
    task = {"ids": [ray.put(paired)], "repeated": True}
    rows = pa.concat_tables(
        [
            b
            for b in texted.map_batches(_selected, batch_format="pyarrow", fn_kwargs=task)
            .drop_columns(["text"])
            .iter_batches(batch_format="pyarrow", batch_size=None)
        ]
        or [pa.table({})]
    )
    if not rows.num_rows:
        return np.zeros(0, dtype=np.int64), []
    rows = rows.sort_by("position")
    repeated = np.unique(rows.column("text_id").to_numpy())
    ask = {"ids": [ray.put(repeated)], "repeated": False}
    usable_ds = signatures.map_batches(_selected_ids, batch_format="pyarrow", fn_kwargs=ask)
    usable = collect(usable_ds, _IDS).column("text_id").to_numpy()
    rows = rows.filter(pa.array(np.isin(rows.column("text_id").to_numpy(), usable)))
    texts, text_index = np.unique(rows.column("text_id").to_numpy(), return_inverse=True)
    pair_index = np.stack(
        [np.searchsorted(texts, pairs.column(c).to_numpy()) for c in ("i", "j")], axis=1
    )
    names = ("record_id", "prompt_id", "passes_mcq")
    columns = {n: rows.column(n).to_pylist() for n in names if n in rows.column_names}
    confidence = rows.column("confidence").to_numpy() if "confidence" in rows.column_names else None
    order = priority_order(step.keep, columns, confidence)
    groups = columns["prompt_id"] if step.field == "prompt" else None
    hits = keep_pass(
        order, text_index.tolist(), np.ones(len(texts), bool), pair_index,
        pairs.column("jaccard").to_numpy(), groups,
    )  # fmt: skip
    decisions = step.hit_decisions(hits, columns["record_id"], text_index.tolist())
    at = [k for k, decision in enumerate(decisions) if decision is not None]
    return rows.column("position").to_numpy()[at], [decisions[k] for k in at]


def _selected_ids(batch: pa.Table, ids: list[Any], repeated: bool) -> pa.Table:
    import ray

    wanted = np.isin(batch.column("text_id").to_numpy(), ray.get(ids[0]))
    return batch.filter(pa.array(wanted)).select(["text_id"])
