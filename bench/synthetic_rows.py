"""The numbers behind `bench.synthetic`'s rows: which question each row asks, how long its
response is, and its teacher's top-k, all drawn with NumPy from a seed.

The plan is a few small integers per row (not per token), so planning 16M tokens holds
about 2 MB; the top-k is drawn a batch at a time by `topk_block`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CORRECT_FRACTION = 0.8  # rows whose final "Answer: X" is the reference
TRUNCATED_FRACTION = 0.02  # rows that stop at max_new_tokens
TOP1_SAMPLED_FRACTION = 0.8  # positions whose sampled token is the best top-k entry


@dataclass(frozen=True)
class RowPlan:
    """Per row: global index, question index, sample index, near-copy or not, response
    length, whether its answer is the reference, whether it was cut at max_new_tokens."""

    row: np.ndarray
    question: np.ndarray
    sample: np.ndarray
    is_copy: np.ndarray
    length: np.ndarray
    correct: np.ndarray
    truncated: np.ndarray
    distinct_prompts: int = 0

    @property
    def rows(self) -> int:
        return int(self.row.size)

    def slice(self, start: int, stop: int) -> RowPlan:
        return RowPlan(
            *(getattr(self, name)[start:stop] for name in _ARRAYS),
            distinct_prompts=self.distinct_prompts,
        )


_ARRAYS = ("row", "question", "sample", "is_copy", "length", "correct", "truncated")


def response_lengths(tokens: int, mean: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths uniform in [0.75, 1.25] x `mean`, the last one cut so they sum to `tokens`."""
    low, high = max(1, mean * 3 // 4), mean * 5 // 4
    drawn = rng.integers(low, high + 1, size=tokens // low + 1)
    total = np.cumsum(drawn)
    rows = int(np.searchsorted(total, tokens)) + 1  # the first prefix reaching `tokens`
    lengths = drawn[:rows].copy()
    lengths[-1] -= int(total[rows - 1]) - tokens
    return lengths.astype(np.int64)


def plan_rows(
    tokens: int, mean_length: int, near_copy_fraction: float, questions: int, seed: int
) -> RowPlan:
    """Rows for `tokens` response tokens: questions in a seeded order, cycled with the next
    sample index; a near-copy row asks a question some earlier row asked."""
    rng = np.random.default_rng([seed, 0])
    length = response_lengths(tokens, mean_length, rng)
    n = length.size
    is_copy = rng.random(n) < near_copy_fraction
    is_copy[0] = False  # a copy needs an earlier original
    originals = np.cumsum(~is_copy) - 1  # the originals' running index (a copy: the last's)
    order = rng.permutation(questions)
    # a copy's source: a uniformly drawn original before it
    source = np.floor(rng.random(n) * (originals + 1)).astype(np.int64)
    which = np.where(is_copy, source, originals)
    question = order[which % questions]
    sample = np.where(is_copy, 0, originals // questions)
    distinct = int(min(originals[-1] + 1, questions) + is_copy.sum())
    return RowPlan(
        row=np.arange(n),
        question=question,
        sample=sample,
        is_copy=is_copy,
        length=length,
        correct=rng.random(n) < CORRECT_FRACTION,
        truncated=rng.random(n) < TRUNCATED_FRACTION,
        distinct_prompts=distinct,
    )


@dataclass(frozen=True)
class TopKBlock:
    """A batch's top-k, flat as `distill.codec.TopK` holds it: k entries per token."""

    ids: np.ndarray  # [T * k] int64, distinct within each token
    logprobs: np.ndarray  # [T * k] float32, descending within each token
    tail: np.ndarray  # [T] float32: 1 - the k probabilities' sum
    sampled_ids: np.ndarray  # [T] the token the teacher emitted
    sampled_logprobs: np.ndarray  # [T] float32


def distinct_ids(rng: np.random.Generator, tokens: int, k: int, vocab: int) -> np.ndarray:
    """[tokens, k] ids, distinct within a row, skewed towards low ids, in random order."""
    raw = np.floor((vocab - k) * rng.random((tokens, k)) ** 3).astype(np.int64)
    raw.sort(axis=1)
    step = np.arange(k)
    # raw - step stays below vocab - k, so ids stay below vocab; the running max makes them
    # strictly increasing, hence distinct.
    ids = np.maximum.accumulate(raw - step, axis=1) + step
    return np.take_along_axis(ids, np.argsort(rng.random((tokens, k)), axis=1), axis=1)


def topk_block(rng: np.random.Generator, lengths: np.ndarray, k: int, vocab: int) -> TopKBlock:
    """Top-k of `lengths.sum()` positions, shaped like SmolLM2-135M's on MMLU
    (tests/fixtures/smollm2_mmlu.parquet): a best entry ~3 nats above the second, the rest
    falling by exponential gaps of ~0.3 nats (best to 20th: ~8 nats), and a Beta(0.5, 15)
    tail mass (median ~0.01)."""
    tokens = int(lengths.sum())
    ids = distinct_ids(rng, tokens, k, vocab)
    gaps = rng.exponential(0.3, (tokens, k)) + 1e-3  # >= 1e-3: strictly descending in float32
    gaps[:, 0] = 0.0
    gaps[:, 1] *= 10.0  # the best entry stands apart
    scores = -np.cumsum(gaps, axis=1)
    tail = rng.beta(0.5, 15.0, tokens)
    probs = np.exp(scores)
    probs *= ((1.0 - tail) / probs.sum(axis=1))[:, None]
    logprobs = np.log(probs).astype(np.float32)
    pick = np.where(rng.random(tokens) < TOP1_SAMPLED_FRACTION, 0, rng.integers(1, k, tokens))
    at = np.arange(tokens)
    return TopKBlock(
        ids=ids.reshape(-1),
        logprobs=logprobs.reshape(-1),
        tail=tail.astype(np.float32),
        sampled_ids=ids[at, pick],
        sampled_logprobs=logprobs[at, pick],
    )
