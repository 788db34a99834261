"""Confidence signals computed from the stored teacher log-probs, and their AUROC.

Per row (NaN where a signal can't be computed):

- `mean_entropy`: mean over response positions of the entropy of the top-k distribution
  plus one bucket for the tail mass, -Σ p·log p - t·log t (nats). Lower is more confident.
- `min_logprob`: the lowest log-prob of a sampled token. Higher is more confident.
- `answer_logprob`: log-prob of the answer-letter token at the last position where the
  letter the response chose (see `mcq.extract_choice`) was generated; needs the letter
  token ids (`letter_token_ids(tokenizer)`). Higher is more confident.
- `self_consistency`: the share of the samples of the same `prompt_id` whose extracted
  answer equals this row's (itself included; no answer counts 0). Higher is more confident.

The numerics read Arrow list columns as flat numpy arrays (values + offsets): nothing here
turns the top-k payload into Python lists, and only the columns a signal needs are read.

Both top-k codecs give the same signals, up to the packed codec's rounding: only
`mean_entropy` reads the top-k, through `decode_topk`. `min_logprob`, `answer_logprob`
(the `sampled_logprob` column, float32 in both codecs) and `self_consistency` (text) are
exact. Packing moves every top-k log-prob but the token's best by up to `LOGPROB_BOUND`
(0.0392 nats) and rounds the tail up to float16, so a row's `mean_entropy` moves by at
most `mean_entropy_bound(topk)` of its plain top-k (typically a few hundredths of a nat,
mostly far less): a threshold closer than that to a row's value, or two rows closer than
the sum of theirs, may decide or rank differently on the two codecs.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import numpy as np
import pyarrow as pa

from distill.codec import LOGPROB_BOUND, LOGPROB_RANGE, TopK, decode_topk
from distill.codec.quantize import token_max
from distill.tasks.mcq import extract_choice, normalize_reference

# signal -> True when a higher value means a more confident (more likely correct) row.
HIGHER_IS_CONFIDENT: dict[str, bool] = {
    "mean_entropy": False,
    "min_logprob": True,
    "answer_logprob": True,
    "self_consistency": True,
}
SIGNALS = tuple(HIGHER_IS_CONFIDENT)


def _list_parts(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(values, offsets) of a list column; row i is values[offsets[i]:offsets[i+1]]."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    # offsets index the unsliced values, so this stays correct for a sliced array.
    return array.values, np.asarray(array.offsets, dtype=np.int64)


def _row_reduce(per_item: np.ndarray, offsets: np.ndarray, how: str) -> np.ndarray:
    """mean or min of per_item over each row's [start, end) slice; NaN for empty rows.

    Each row is reduced on its own (`reduceat`), never as a difference of running sums, so
    a row's value does not depend on the rows before it: curation streams batches, and a
    row must get the same value in any batch."""
    starts, ends = offsets[:-1], offsets[1:]
    out = np.full(len(starts), np.nan)
    filled = ends > starts
    if not filled.any():
        return out
    # reduceat runs from one start to the next; rows are contiguous and empty rows are
    # skipped, so each segment is exactly one row once the values end at the last row.
    ufunc = np.add if how == "mean" else np.minimum
    reduced = ufunc.reduceat(np.asarray(per_item, dtype=np.float64)[: ends[-1]], starts[filled])
    out[filled] = reduced / (ends - starts)[filled] if how == "mean" else reduced
    return out


def _segment_sums(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The sum of each consecutive segment of `values` (`lengths` long, 0 for an empty one),
    each summed on its own as in `_row_reduce`."""
    out = np.zeros(len(lengths))
    filled = lengths > 0
    if filled.any():
        starts = np.cumsum(lengths) - lengths
        out[filled] = np.add.reduceat(values, starts[filled])
    return out


def mean_sampled_logprob(column: pa.ChunkedArray) -> np.ndarray:
    values, offsets = _list_parts(column)
    return _row_reduce(np.asarray(values, dtype=np.float64), offsets, "mean")


def min_logprob(column: pa.ChunkedArray) -> np.ndarray:
    values, offsets = _list_parts(column)
    return _row_reduce(np.asarray(values, dtype=np.float64), offsets, "min")


def mean_entropy(topk: TopK) -> np.ndarray:
    """Mean per-position entropy of top-k + tail bucket, in nats, per row of `topk`."""
    logp = topk.logprobs.astype(np.float64)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):  # p·log p -> 0 as p -> 0: a -inf entry adds nothing
        terms = np.where(p > 0, -p * logp, 0.0)
    per_position = _segment_sums(terms, np.asarray(topk.k_per_token, dtype=np.int64))
    tail = np.clip(topk.tail.astype(np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_position = per_position + np.where(tail > 0, -tail * np.log(tail), 0.0)
    row_offsets = np.concatenate([[0], np.cumsum(topk.tokens_per_row)])
    return _row_reduce(per_position, row_offsets, "mean")


def mean_entropy_bound(topk: TopK) -> np.ndarray:
    """Per row, the most `mean_entropy` can move when this (plain) top-k is packed.

    A rigorous bound, entry by entry, for f(l) = -e^l·l: an entry equal to its token's best
    is stored exactly; one within range moves by d <= LOGPROB_BOUND, so f by at most
    d·e^d·p·(|1 + l| + d); one further below is stored at best - R (R = LOGPROB_RANGE), and
    both f values lie in [0, e^(best-R)·(R - best)]. The float16 tail t moves up by at most
    2^-10·t (2^-24 below 2^-14), so -t·log t by at most 2^-10·t·(|1 + log t| + 2^-10)
    (1.1e-6 below 2^-14). 1e-5 per row covers float32 rounding.
    """
    d, far = LOGPROB_BOUND, LOGPROB_RANGE
    logp = topk.logprobs.astype(np.float64)
    best = np.repeat(token_max(topk.logprobs, topk.k_per_token), topk.k_per_token)
    best = best.astype(np.float64)
    p = np.exp(logp)
    with np.errstate(invalid="ignore"):
        near = np.where(p > 0, d * np.exp(d) * p * (np.abs(1 + logp) + d), 0.0)
    entry = np.where(logp >= best, 0.0, near)
    entry = np.where(best - logp > far, np.exp(best - far) * (far - best), entry)
    sums = np.concatenate([[0.0], np.cumsum(entry)])
    ends = np.cumsum(topk.k_per_token)
    per_position = sums[ends] - sums[ends - topk.k_per_token]
    t = np.clip(topk.tail.astype(np.float64), 0.0, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        tail = np.where(t >= 2**-14, 2**-10 * t * (np.abs(1 + np.log(t)) + 2**-10), 1.1e-6)
    per_position += np.where(t > 0, tail, 0.0)
    row_offsets = np.concatenate([[0], np.cumsum(topk.tokens_per_row)])
    return _row_reduce(per_position, row_offsets, "mean") + 1e-5


def letter_token_ids(tokenizer: Any, letters: str = "ABCD") -> dict[int, str]:
    """{token id: letter} for every single-token spelling of each letter ("B", " B")."""
    found: dict[int, str] = {}
    for letter in letters:
        for spelling in (letter, " " + letter):
            ids = tokenizer.encode(spelling, add_special_tokens=False)
            if len(ids) == 1:
                found[ids[0]] = letter
    return found


def answer_logprob(
    responses: list[str],
    token_ids: pa.ChunkedArray,
    sampled_logprob: pa.ChunkedArray,
    letter_ids: dict[int, str],
    letters: str = "ABCD",
) -> np.ndarray:
    ids, id_offsets = _list_parts(token_ids)
    ids = np.asarray(ids)
    lps, lp_offsets = _list_parts(sampled_logprob)
    lps = np.asarray(lps, dtype=np.float64)
    out = np.full(len(responses), np.nan)
    for row, response in enumerate(responses):
        extracted = extract_choice(response or "", letters)
        if extracted is None:
            continue
        row_ids = ids[id_offsets[row] : id_offsets[row + 1]]
        hits = [
            t for t, tok in enumerate(row_ids.tolist()) if letter_ids.get(tok) == extracted.letter
        ]
        if hits:
            out[row] = lps[lp_offsets[row] + hits[-1]]
    return out


def extracted_letters(responses: list[str], letters: str = "ABCD") -> list[str | None]:
    found = (extract_choice(r or "", letters) for r in responses)
    return [e.letter if e else None for e in found]


def self_consistency(prompt_ids: list[str], answers: list[str | None]) -> np.ndarray:
    by_prompt: dict[str, Counter[str | None]] = defaultdict(Counter)
    for prompt_id, answer in zip(prompt_ids, answers, strict=True):
        by_prompt[prompt_id][answer] += 1
    out = np.full(len(answers), np.nan)
    for row, (prompt_id, answer) in enumerate(zip(prompt_ids, answers, strict=True)):
        counts = by_prompt[prompt_id]
        total = sum(counts.values())
        if total > 1:  # one sample agrees with itself: no information
            out[row] = 0.0 if answer is None else counts[answer] / total
    return out


def compute_signals(
    table: pa.Table, letter_ids: dict[int, str] | None = None, letters: str = "ABCD"
) -> dict[str, np.ndarray]:
    """Every signal; answer_logprob only with `letter_ids`. `table` holds the top-k columns
    of its codec (`ConfidenceFilter.input_columns`) and the columns the signals read."""
    per_row, answers = row_signals(table, letter_ids, letters)
    return with_self_consistency(per_row, table.column("prompt_id").to_pylist(), answers)


def row_signals(
    table: pa.Table, letter_ids: dict[int, str] | None = None, letters: str = "ABCD"
) -> tuple[dict[str, np.ndarray], list[str | None]]:
    """The signals that read one row each, and each row's extracted answer letter: all that
    `self_consistency` needs besides the prompt ids."""
    responses = table.column("response_text").to_pylist()
    out = {
        "mean_entropy": mean_entropy(decode_topk(table)),
        "min_logprob": min_logprob(table.column("sampled_logprob")),
    }
    if letter_ids:
        out["answer_logprob"] = answer_logprob(
            responses,
            table.column("token_ids"),
            table.column("sampled_logprob"),
            letter_ids,
            letters,
        )
    return out, extracted_letters(responses, letters)


def with_self_consistency(
    per_row: dict[str, np.ndarray], prompt_ids: list[str], answers: list[str | None]
) -> dict[str, np.ndarray]:
    """`per_row` (from `row_signals`) plus self_consistency, in `compute_signals`' order."""
    out = {
        "mean_entropy": per_row["mean_entropy"],
        "min_logprob": per_row["min_logprob"],
        "self_consistency": self_consistency(prompt_ids, answers),
    }
    if "answer_logprob" in per_row:
        out["answer_logprob"] = per_row["answer_logprob"]
    return out


def is_wrong(responses: list[str], references: list[str | None], letters: str = "ABCD"):
    """1.0 wrong / 0.0 right per row, NaN where the reference is not a choice letter."""
    out = np.full(len(responses), np.nan)
    for row, (response, reference) in enumerate(zip(responses, references, strict=True)):
        letter = normalize_reference(reference, letters)
        if letter is not None:
            extracted = extract_choice(response or "", letters)
            out[row] = 0.0 if extracted is not None and extracted.letter == letter else 1.0
    return out


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """P(score of a random positive > score of a random negative), ties counted half.

    Rank-based (Mann-Whitney U) with average ranks for ties; NaN with one class only.
    """
    scores, labels = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    ranks = (sums / counts)[inverse]  # average rank within each tie group
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def signal_aurocs(signals: dict[str, np.ndarray], wrong: np.ndarray) -> dict[str, dict[str, Any]]:
    """AUROC of each signal for predicting a wrong answer (0.5 = chance, 1 = perfect).

    A signal is oriented so that low confidence predicts wrong; rows where the signal or
    the label is NaN are left out, and `n` / `wrong` say how many rows were scored.
    """
    out: dict[str, dict[str, Any]] = {}
    for name, values in signals.items():
        usable = ~np.isnan(values) & ~np.isnan(wrong)
        risk = -values[usable] if HIGHER_IS_CONFIDENT[name] else values[usable]
        labels = wrong[usable].astype(bool)
        value = auroc(risk, labels)
        out[name] = {
            "auroc": None if np.isnan(value) else round(value, 4),
            "n": int(usable.sum()),
            "wrong": int(labels.sum()),
        }
    return out
