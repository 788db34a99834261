"""Sampled KD targets: draws merged into unbiased weights, fixed width, reproducible."""

from __future__ import annotations

import math

import pytest
import torch

from distill.teachers.sampled_targets import sample_targets


def test_weights_are_counts_over_k_and_sum_to_one():
    logits = torch.randn(3, 11)
    ids, log_w, tail = sample_targets(logits, 8, torch.Generator().manual_seed(0))
    assert ids.shape == log_w.shape == (3, 8)
    assert torch.equal(tail, torch.zeros(3))
    w = log_w.exp()
    torch.testing.assert_close(w.sum(-1), torch.ones(3))
    counts = w * 8
    assert torch.allclose(counts, counts.round(), atol=1e-5)
    for row in range(3):
        assert len(set(ids[row].tolist())) == 8  # distinct ids, padding included
        drawn = w[row] > 0
        # most drawn first, padding (weight 0, log -inf) last
        assert torch.all(w[row][:-1] >= w[row][1:])
        assert torch.isneginf(log_w[row][~drawn]).all()


def test_unbiased_estimate_of_p():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -3.0]])
    p = torch.softmax(logits, -1)[0]
    gen = torch.Generator().manual_seed(1)
    est = torch.zeros(5)
    trials = 2000
    for _ in range(trials):
        ids, log_w, _ = sample_targets(logits, 4, gen)
        est.index_add_(0, ids[0], log_w[0].exp())
    torch.testing.assert_close(est / trials, p, atol=0.02, rtol=0)


def test_per_row_generators_make_rows_independent_of_the_batch():
    logits = torch.randn(2, 50)
    alone, _, _ = sample_targets(logits[1:], 6, [torch.Generator().manual_seed(7)])
    both, _, _ = sample_targets(
        logits, 6, [torch.Generator().manual_seed(3), torch.Generator().manual_seed(7)]
    )
    assert torch.equal(alone[0], both[1])


def test_bad_k_is_refused():
    with pytest.raises(ValueError):
        sample_targets(torch.zeros(1, 4), 0)
    with pytest.raises(ValueError):
        sample_targets(torch.zeros(1, 4), 5)


def test_one_hot_teacher_gives_one_id_with_weight_one():
    logits = torch.full((1, 6), -math.inf)
    logits[0, 2] = 0.0
    ids, log_w, _ = sample_targets(logits, 3, torch.Generator().manual_seed(0))
    assert ids[0, 0] == 2 and log_w[0, 0] == 0.0
    assert torch.isneginf(log_w[0, 1:]).all()
