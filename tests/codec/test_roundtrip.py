"""encode -> decode keeps ids exactly and log-probs within the stated bound, any shape."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distill.codec import LOGPROB_BOUND, LOGPROB_RANGE, TopK, bits_for, decode_topk, encode_topk
from distill.codec.topk import plain_topk_columns

FLOAT32_SLACK = 1e-5  # float32 rounding of `ref - code * step` for log-probs above -100


def random_topk(seed: int, vocab: int, ks: list[int], lengths: list[int]) -> TopK:
    """Rows with `lengths[r]` tokens of `ks[r]` entries; log-probs sorted or not, some -inf."""
    rng = np.random.default_rng(seed)
    k_per_token = np.repeat(np.asarray(ks, np.int64), lengths)
    n = int(k_per_token.sum())
    ids = rng.integers(0, vocab, size=n)
    if n:
        ids[rng.integers(0, n)] = vocab - 1  # the widest id always appears
    scale = rng.choice([0.5, 5.0, 40.0])  # narrow, typical and beyond-the-range spreads
    lps = (-rng.exponential(scale, size=n) - rng.exponential(2.0)).astype(np.float32)
    lps[rng.random(n) < 0.02] = -np.inf
    # sort each token's entries descending, as backends write them, for half the cases
    if seed % 2 and n:
        tok = np.repeat(np.arange(k_per_token.size), k_per_token)
        lps = lps[np.lexsort((-lps, tok))]
    starts = np.cumsum(k_per_token) - k_per_token
    if n:  # a token's best entry is always finite
        lps[starts[k_per_token > 0]] = np.maximum(lps[starts[k_per_token > 0]], -30.0)
    tail = rng.choice([0.0, 1e-9, 3e-7, 1e-3, 0.4, 1.0], size=k_per_token.size).astype(np.float32)
    tail *= rng.random(k_per_token.size).astype(np.float32)
    return TopK(ids, lps, k_per_token, tail, np.asarray(lengths, np.int64))


def check_roundtrip(topk: TopK, vocab: int) -> None:
    table = pa.table(encode_topk(topk, bits_for(vocab)))
    out = decode_topk(table)
    np.testing.assert_array_equal(out.ids, topk.ids)
    np.testing.assert_array_equal(out.k_per_token, topk.k_per_token)
    np.testing.assert_array_equal(out.tokens_per_row, topk.tokens_per_row)
    ref = np.repeat(
        np.maximum.reduceat(topk.logprobs, np.cumsum(topk.k_per_token) - topk.k_per_token)
        if topk.logprobs.size
        else np.zeros(0, np.float32),
        topk.k_per_token,
    )
    inside = topk.logprobs >= ref - LOGPROB_RANGE
    err = np.abs(out.logprobs[inside].astype(np.float64) - topk.logprobs[inside])
    assert err.max(initial=0) <= LOGPROB_BOUND + FLOAT32_SLACK
    # below the range: clamped to ref - RANGE, never lower than the truth, never -inf
    below = out.logprobs[~inside]
    np.testing.assert_allclose(below, (ref - LOGPROB_RANGE)[~inside], atol=FLOAT32_SLACK)
    assert np.isfinite(out.logprobs).all()
    # the best entry of every token is exact
    np.testing.assert_array_equal(out.logprobs[topk.logprobs == ref], ref[topk.logprobs == ref])
    # tail: rounded up by at most one float16 step
    assert (out.tail >= topk.tail).all()
    ulp = np.spacing(topk.tail.astype(np.float16)).astype(np.float32)
    assert (out.tail - topk.tail <= ulp).all()


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    vocab=st.one_of(st.integers(2, 2**20), st.sampled_from([2, 3, 256, 257, 49152, 2**20])),
    shapes=st.lists(st.tuples(st.integers(1, 128), st.integers(0, 12)), min_size=0, max_size=5),
)
def test_roundtrip_property(seed: int, vocab: int, shapes: list[tuple[int, int]]) -> None:
    ks = [k for k, _ in shapes]
    lengths = [n for _, n in shapes]
    check_roundtrip(random_topk(seed, vocab, ks, lengths), vocab)


def test_roundtrip_survives_take_and_slices() -> None:
    topk = random_topk(1, 49152, [20, 20, 7, 20], [5, 0, 3, 9])
    table = pa.table(encode_topk(topk, bits_for(49152)))
    whole = decode_topk(table)
    part = decode_topk(table.take([3, 0]))
    first3, last9 = whole.ids[:100], whole.ids[100 + 21 :]
    np.testing.assert_array_equal(part.ids, np.concatenate([last9, first3]))
    sliced = decode_topk(table.slice(2, 2))
    np.testing.assert_array_equal(sliced.ids, whole.ids[100:])


def test_plain_layout_decodes_to_the_same_arrays() -> None:
    topk = random_topk(2, 1000, [4, 4], [3, 2])
    plain = decode_topk(pa.table(plain_topk_columns(topk)))
    np.testing.assert_array_equal(plain.ids, topk.ids)
    np.testing.assert_array_equal(plain.logprobs, topk.logprobs)
    np.testing.assert_array_equal(plain.tail, topk.tail)


def test_refuses_ids_outside_the_width_and_ragged_k() -> None:
    topk = random_topk(3, 1000, [4], [2])
    with pytest.raises(ValueError, match="does not fit"):
        encode_topk(topk, bits_for(10))
    ragged = TopK(topk.ids[:7], topk.logprobs[:7], np.array([4, 3]), topk.tail, np.array([2]))
    with pytest.raises(ValueError, match="one k for every token"):
        encode_topk(ragged, bits_for(1000))


def test_nan_log_probs_are_refused() -> None:
    topk = random_topk(4, 100, [3], [1])
    topk.logprobs[1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        encode_topk(topk, bits_for(100))
