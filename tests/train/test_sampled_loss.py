"""The sampled-targets KD loss (divergence "sampled_ce"): unbiased for the dense CE."""

from __future__ import annotations

import pytest
import torch

from distill.teachers.sampled_targets import sample_targets
from distill.train.config import KDLossConfig
from distill.train.losses import (
    LossSpec,
    TeacherTargets,
    distill_loss,
    sparse_divergence_per_token,
)


def _sampled_ce(student_logits, teacher_logits, k, seed, temperature=1.0):
    targets = TeacherTargets(
        *sample_targets(teacher_logits, k, torch.Generator().manual_seed(seed))
    )
    spec = LossSpec(temperature=temperature, divergence="sampled_ce")
    return sparse_divergence_per_token(student_logits, targets, spec)


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
    sampled_ce = LossSpec(divergence="sampled_ce")
    got = sparse_divergence_per_token(
        student, TeacherTargets(ids, log_w, torch.zeros(1)), sampled_ce
    )
    log_q = torch.log_softmax(student, -1)[0]
    torch.testing.assert_close(got[0], -(0.5 * log_q[3] + 0.5 * log_q[1]))
    mask = torch.tensor([[True, True, False, False]])
    garbage = torch.tensor([[0.5, 0.5, 9.0, 9.0]]).log()
    masked = sparse_divergence_per_token(
        student, TeacherTargets(ids, garbage, torch.zeros(1), mask), sampled_ce
    )
    torch.testing.assert_close(masked, got)


def test_distill_loss_scales_by_t_squared_and_refuses_taid():
    torch.manual_seed(3)
    logits = torch.randn(2, 5, 16)
    teacher = torch.randn(10, 16)
    ids, log_w, tail = sample_targets(teacher, 4, torch.Generator().manual_seed(0))
    labels = torch.randint(0, 16, (2, 5))
    targets = TeacherTargets(ids.view(2, 5, 4), log_w.view(2, 5, 4), tail.view(2, 5))
    spec = LossSpec(temperature=2.0, alpha=1.0, divergence="sampled_ce")
    out = distill_loss(logits, targets, labels, spec)
    torch.testing.assert_close(out.loss, 4.0 * out.kd)
    assert torch.isfinite(out.loss)
    with pytest.raises(ValueError, match="TAID"):
        distill_loss(logits, targets, labels, LossSpec(divergence="sampled_ce", taid_t=0.5))


def test_train_options_follow_the_manifest_targets():
    assert KDLossConfig().for_targets("sampled") == KDLossConfig(divergence="sampled_ce")
    assert KDLossConfig(targets="topk").for_targets("topk") == KDLossConfig(targets="topk")
    with pytest.raises(ValueError, match="holds 'sampled'"):
        KDLossConfig(targets="topk").for_targets("sampled")
    with pytest.raises(ValueError, match="needs top-k"):
        KDLossConfig(divergence="reverse_kl").for_targets("sampled")
    with pytest.raises(ValueError, match="--targets sampled"):
        KDLossConfig(divergence="sampled_ce").for_targets("topk")
