"""The sampled-targets KD loss (divergence "sampled_ce"): unbiased for the dense CE."""

from __future__ import annotations

import pytest
import torch

from distill.teachers.sampled_targets import sample_targets
from distill.train.losses import distill_loss, sparse_divergence_per_token


def _sampled_ce(student_logits, teacher_logits, k, seed, temperature=1.0):
    ids, log_w, tail = sample_targets(teacher_logits, k, torch.Generator().manual_seed(seed))
    return sparse_divergence_per_token(
        student_logits, ids, log_w, tail, temperature=temperature, divergence="sampled_ce"
    )


def test_average_over_seeds_matches_dense_cross_entropy():
    torch.manual_seed(0)
    teacher, student = torch.randn(4, 30), torch.randn(4, 30)
    dense = -(torch.softmax(teacher, -1) * torch.log_softmax(student, -1)).sum(-1)
    mean = torch.stack([_sampled_ce(student, teacher, 8, s) for s in range(1500)]).mean(0)
    torch.testing.assert_close(mean, dense, atol=0.03, rtol=0.01)


def test_large_k_approaches_dense_cross_entropy():
    torch.manual_seed(1)
    teacher, student = torch.randn(3, 20), torch.randn(3, 20)
    dense = -(torch.softmax(teacher, -1) * torch.log_softmax(student, -1)).sum(-1)
    # One draw of k = 20 on a 20-token vocabulary: close, not exact (the mean test is tight).
    torch.testing.assert_close(_sampled_ce(student, teacher, 20, 0), dense, atol=0.5, rtol=0)


def test_gradient_is_zero_in_expectation_when_student_equals_teacher():
    torch.manual_seed(2)
    teacher = torch.randn(2, 12)
    grads = []
    for seed in range(1500):
        student = teacher.clone().requires_grad_(True)
        _sampled_ce(student, teacher, 6, seed).sum().backward()
        grads.append(student.grad)
    mean = torch.stack(grads).mean(0)
    assert mean.abs().max() < 0.02
    # a single draw is not zero: the estimate is noisy, only its expectation is exact
    assert grads[0].abs().max() > 0.01


def test_padding_slots_and_mask_count_nothing():
    student = torch.randn(1, 8)
    ids = torch.tensor([[3, 1, 0, 5]])
    log_w = torch.tensor([[0.5, 0.5, 0.0, 0.0]]).log()
    got = sparse_divergence_per_token(student, ids, log_w, torch.zeros(1), divergence="sampled_ce")
    log_q = torch.log_softmax(student, -1)[0]
    torch.testing.assert_close(got[0], -(0.5 * log_q[3] + 0.5 * log_q[1]))
    mask = torch.tensor([[True, True, False, False]])
    masked = sparse_divergence_per_token(
        student, ids, torch.tensor([[0.5, 0.5, 9.0, 9.0]]).log(), torch.zeros(1), mask,
        divergence="sampled_ce",
    )  # fmt: skip
    torch.testing.assert_close(masked, got)


def test_distill_loss_scales_by_t_squared_and_refuses_taid():
    torch.manual_seed(3)
    logits = torch.randn(2, 5, 16)
    teacher = torch.randn(10, 16)
    ids, log_w, tail = sample_targets(teacher, 4, torch.Generator().manual_seed(0))
    labels = torch.randint(0, 16, (2, 5))
    args = (ids.view(2, 5, 4), log_w.view(2, 5, 4), tail.view(2, 5), labels)
    out = distill_loss(logits, *args, temperature=2.0, alpha=1.0, divergence="sampled_ce")
    torch.testing.assert_close(out.loss, 4.0 * out.kd)
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="TAID"):
        distill_loss(logits, *args, divergence="sampled_ce", taid_lambda=0.5)


def test_train_options_follow_the_manifest_targets():
    from types import SimpleNamespace

    from distill.train.runner import kd_options_for_targets

    sampled = SimpleNamespace(targets="sampled")
    topk = SimpleNamespace(targets="topk")
    assert kd_options_for_targets(sampled, None) == {"divergence": "sampled_ce"}
    assert kd_options_for_targets(topk, {"targets": "topk"}) == {}
    with pytest.raises(ValueError, match="holds 'sampled'"):
        kd_options_for_targets(sampled, {"targets": "topk"})
    with pytest.raises(ValueError, match="needs top-k"):
        kd_options_for_targets(sampled, {"divergence": "reverse_kl"})
    with pytest.raises(ValueError, match="--targets sampled"):
        kd_options_for_targets(topk, {"divergence": "sampled_ce"})
