"""Reverse KL, generalised JSD, TAID targets and schedules on toy tensors, each checked
against a dense reference over the full vocabulary written here with plain torch ops."""

from __future__ import annotations

import itertools
import math
import os

import pytest
import torch

from distill.train.divergences import interpolated_target
from distill.train.losses import LossSpec, TeacherTargets, distill_loss, sparse_divergence_per_token
from distill.train.schedules import scheduled_alpha, taid_linear_t
from tests.train.test_losses import V, sparse_targets, toy

DIVERGENCES = [("forward_kl", 0.5), ("reverse_kl", 0.5), ("jsd", 0.5), ("jsd", 0.1), ("jsd", 0.9)]


def dense_reference(student, teacher, divergence, beta, temperature=1.0, lam=None):
    """The same divergence over all V tokens, from the definitions."""
    q = torch.softmax(student / temperature, -1)
    p = torch.softmax(teacher / temperature, -1)
    if lam is not None:  # TAID: a mix of log-probs, renormalised; the student side detached
        p = torch.softmax(lam * p.log() + (1 - lam) * q.detach().log(), -1)

    def kl(a, b):
        return (a * (a.log() - b.log())).sum(-1)

    if divergence == "forward_kl" or (divergence == "jsd" and beta == 0.0):
        return kl(p, q)
    if divergence == "reverse_kl" or (divergence == "jsd" and beta == 1.0):
        return kl(q, p)
    m = beta * p + (1 - beta) * q
    return beta * kl(p, m) + (1 - beta) * kl(q, m)


@pytest.mark.parametrize(("divergence", "beta"), DIVERGENCES)
@pytest.mark.parametrize("k", [1, 5, V])
@pytest.mark.parametrize("lam", [None, 0.3])
def test_identical_distributions_give_zero(divergence, beta, k, lam):
    logits, _, labels = toy()
    ids, lps, tail = sparse_targets(logits, k)
    targets = TeacherTargets(ids, lps, tail)
    spec = LossSpec(divergence=divergence, beta=beta, taid_t=lam)
    div = sparse_divergence_per_token(logits, targets, spec)
    assert div.abs().max() < 1e-5
    parts = distill_loss(
        logits, targets, labels, LossSpec(alpha=1.0, divergence=divergence, beta=beta)
    )
    assert abs(float(parts.loss)) < 1e-5


@pytest.mark.parametrize(("divergence", "beta"), [*DIVERGENCES, ("jsd", 0.0), ("jsd", 1.0)])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
@pytest.mark.parametrize("lam", [None, 0.4])
def test_k_equal_vocab_matches_dense(divergence, beta, temperature, lam):
    student, teacher, _ = toy(1)
    ids, lps, tail = sparse_targets(teacher, V)
    perm = torch.randperm(V, generator=torch.Generator().manual_seed(3))
    ids, lps = ids[..., perm], lps[..., perm]
    s1 = student.clone().requires_grad_(True)
    spec = LossSpec(temperature=temperature, divergence=divergence, beta=beta, taid_t=lam)
    sparse = sparse_divergence_per_token(s1, TeacherTargets(ids, lps, tail), spec)
    s2 = student.clone().requires_grad_(True)
    dense = dense_reference(s2, teacher, divergence, beta, temperature, lam)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)
    sparse.sum().backward()
    dense.sum().backward()
    torch.testing.assert_close(s1.grad, s2.grad, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_jsd_matches_trl_generalized_jsd(beta, temperature):
    """Same beta convention as TRL GKD: beta = 0 forward KL, beta = 1 reverse KL."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from trl.experimental.gkd import GKDTrainer

    student, teacher, _ = toy(2)
    ids, lps, tail = sparse_targets(teacher, V)
    spec = LossSpec(temperature=temperature, divergence="jsd", beta=beta)
    ours = sparse_divergence_per_token(student, TeacherTargets(ids, lps, tail), spec)
    theirs = GKDTrainer.generalized_jsd_loss(
        student, teacher, beta=beta, temperature=temperature, reduction="none"
    ).sum(-1)
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(("divergence", "beta"), DIVERGENCES)
def test_padded_topk_entries_are_ignored(divergence, beta):
    student, teacher, labels = toy(7)
    ids, lps, tail = sparse_targets(teacher, 3)
    spec = LossSpec(divergence=divergence, beta=beta, taid_t=0.5)
    base = distill_loss(student, TeacherTargets(ids, lps, tail), labels, spec)
    pad_ids = torch.cat([ids, torch.zeros_like(ids[..., :2])], -1)
    pad_lps = torch.cat([lps, torch.full_like(lps[..., :2], 5.0)], -1)
    topk_mask = torch.cat(
        [torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids[..., :2], dtype=torch.bool)],
        -1,
    )
    padded = distill_loss(student, TeacherTargets(pad_ids, pad_lps, tail, topk_mask), labels, spec)
    torch.testing.assert_close(padded.loss, base.loss)


@pytest.mark.parametrize(("divergence", "beta"), DIVERGENCES)
@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_gradients_are_finite_in_extreme_cases(divergence, beta, temperature):
    student, teacher, labels = toy(8)
    ids, lps, tail = sparse_targets(teacher, 4)
    for teacher_tail, mass_on_topk in ((torch.zeros_like(tail), 60.0), (tail, -60.0)):
        extreme = student.clone()
        extreme.scatter_(-1, ids, mass_on_topk)  # student all on / all off the teacher's top-k
        logits = extreme.requires_grad_(True)
        loss = distill_loss(
            logits, TeacherTargets(ids, lps, teacher_tail), labels,
            LossSpec(temperature=temperature, divergence=divergence, beta=beta),
        ).loss  # fmt: skip
        loss.backward()
        assert torch.isfinite(loss)
        assert torch.isfinite(logits.grad).all()


def test_reverse_kl_penalises_student_mass_on_an_empty_teacher_tail():
    student, teacher, labels = toy(9)
    ids, lps, _ = sparse_targets(teacher, 4)
    lps = torch.log_softmax(lps, -1)  # teacher: all its mass on the top-4, tail 0
    empty = torch.zeros(lps.shape[:-1])
    off = student.clone().scatter_(-1, ids, -20.0)  # student: almost all mass in the tail
    on = student.clone().scatter_(-1, ids, 20.0)
    spec, targets = LossSpec(divergence="reverse_kl", alpha=1.0), TeacherTargets(ids, lps, empty)
    high = distill_loss(off, targets, labels, spec).loss
    low = distill_loss(on, targets, labels, spec).loss
    assert float(high) > 10.0 > float(low)


def test_taid_target_endpoints_and_normalisation():
    student, teacher, _ = toy(10)
    log_q = torch.log_softmax(student, -1)
    log_p = torch.log_softmax(teacher, -1)
    torch.testing.assert_close(interpolated_target(log_q, log_p, 1.0), log_p)
    torch.testing.assert_close(interpolated_target(log_q, log_p, 0.0), log_q)
    mid = interpolated_target(log_q, log_p, 0.3).exp()
    geometric = log_p.exp() ** 0.3 * log_q.exp() ** 0.7
    torch.testing.assert_close(mid, geometric / geometric.sum(-1, keepdim=True))
    # t = 0 (target = stopgrad(student)): zero loss and zero gradient
    s = student.clone().requires_grad_(True)
    ids, lps, tail = sparse_targets(teacher, 5)
    div = sparse_divergence_per_token(s, TeacherTargets(ids, lps, tail), LossSpec(taid_t=0.0))
    div.sum().backward()
    assert div.abs().max() < 1e-6 and s.grad.abs().max() < 1e-6


def test_schedules():
    assert scheduled_alpha("constant", 0.7, 0.5) == 0.5
    assert scheduled_alpha("taid", 0.7, 0.5) == 0.5
    linear = [scheduled_alpha("linear", t / 10, 0.2, 0.8) for t in range(11)]
    assert math.isclose(linear[0], 0.2) and math.isclose(linear[-1], 0.8)
    assert all(b > a for a, b in itertools.pairwise(linear))
    assert scheduled_alpha("linear", 2.0, 0.2, 0.8) == pytest.approx(0.8)  # clamped
    ts = [taid_linear_t(t / 10, t_start=0.4) for t in range(11)]
    assert ts[0] == pytest.approx(0.4) and ts[-1] == pytest.approx(1.0)
    assert all(b > a for a, b in itertools.pairwise(ts))
    with pytest.raises(ValueError, match="alpha_end"):
        scheduled_alpha("linear", 0.5, 0.2)
    with pytest.raises(ValueError, match="alpha_schedule"):
        scheduled_alpha("cosine", 0.5, 0.2)  # type: ignore[arg-type]
