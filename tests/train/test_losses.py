"""The losses on toy tensors: zero at identity, dense KL at k = V, GA invariance, masks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from distill.train.losses import (
    LossSpec,
    TeacherTargets,
    distill_loss,
    hard_label_loss,
    sparse_kl_per_token,
    teacher_bucket_logprobs,
)

V = 32


def sparse_targets(teacher_logits: torch.Tensor, k: int):
    """Top-k ids / log-probs / tail mass of a dense teacher, the way records store them."""
    logp = torch.log_softmax(teacher_logits, dim=-1)
    lps, ids = logp.topk(k, dim=-1)
    tail = (1.0 - lps.exp().sum(-1)).clamp(min=0.0)
    return ids, lps, tail


def toy(seed: int = 0, shape=(3, 5)):
    gen = torch.Generator().manual_seed(seed)
    student = torch.randn(*shape, V, generator=gen) * 2
    teacher = torch.randn(*shape, V, generator=gen) * 2
    labels = torch.randint(0, V, shape, generator=gen)
    return student, teacher, labels


@pytest.mark.parametrize("k", [1, 5, V])
def test_identical_distributions_give_zero(k):
    logits, _, labels = toy()
    ids, lps, tail = sparse_targets(logits, k)
    kl = sparse_kl_per_token(logits, TeacherTargets(ids, lps, tail))
    assert kl.abs().max() < 1e-5
    parts = distill_loss(logits, TeacherTargets(ids, lps, tail), labels, LossSpec(alpha=1.0))
    assert abs(float(parts.loss)) < 1e-5


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_k_equal_vocab_matches_dense_kl(temperature):
    student, teacher, labels = toy(1)
    # Shuffle the order of the k = V ids: the sparse loss must not depend on it.
    ids, lps, tail = sparse_targets(teacher, V)
    perm = torch.randperm(V, generator=torch.Generator().manual_seed(3))
    ids, lps = ids[..., perm], lps[..., perm]
    log_q = torch.log_softmax(student / temperature, -1)
    log_p = torch.log_softmax(teacher / temperature, -1)
    dense = F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)
    targets = TeacherTargets(ids, lps, tail)
    sparse = sparse_kl_per_token(student, targets, temperature=temperature)
    torch.testing.assert_close(sparse, dense, atol=1e-5, rtol=1e-5)

    parts = distill_loss(student, targets, labels, LossSpec(alpha=1.0, temperature=temperature))
    torch.testing.assert_close(parts.loss, temperature**2 * dense.mean(), atol=1e-5, rtol=1e-5)


def test_tempered_teacher_buckets_are_normalised():
    _, teacher, _ = toy(2)
    _, lps, tail = sparse_targets(teacher, 4)
    for t in (0.5, 1.0, 3.0):
        total = teacher_bucket_logprobs(lps, tail, temperature=t).exp().sum(-1)
        torch.testing.assert_close(total, torch.ones_like(total), atol=1e-5, rtol=0)


def test_alpha_zero_is_cross_entropy_on_teacher_tokens():
    student, teacher, labels = toy(3)
    labels[0, :2] = -100
    ids, lps, tail = sparse_targets(teacher, 4)
    parts = distill_loss(student, TeacherTargets(ids, lps, tail), labels, LossSpec(alpha=0.0))
    reference = F.cross_entropy(student.reshape(-1, V), labels.reshape(-1), ignore_index=-100)
    torch.testing.assert_close(parts.loss, reference)
    torch.testing.assert_close(hard_label_loss(student, labels), reference)


def test_alpha_mixes_kd_and_ce():
    student, teacher, labels = toy(4)
    ids, lps, tail = sparse_targets(teacher, 4)
    spec = LossSpec(alpha=0.3, temperature=2.0)
    parts = distill_loss(student, TeacherTargets(ids, lps, tail), labels, spec)
    torch.testing.assert_close(parts.loss, 0.3 * 4.0 * parts.kd + 0.7 * parts.ce)


def test_gradient_accumulation_invariance():
    student, teacher, labels = toy(5, shape=(4, 6))
    labels[1, 3:] = -100  # uneven valid counts per micro-batch
    labels[2, :] = -100
    ids, lps, tail = sparse_targets(teacher, 5)
    spec = LossSpec(alpha=0.5, temperature=2.0)
    targets = TeacherTargets(ids, lps, tail)

    full_logits = student.clone().requires_grad_(True)
    full = distill_loss(full_logits, targets, labels, spec).loss
    full.backward()

    micro_logits = student.clone().requires_grad_(True)
    num_items = int((labels != -100).sum())
    total = torch.zeros(())
    for rows in (slice(0, 1), slice(1, 3), slice(3, 4)):
        part = distill_loss(
            micro_logits[rows], targets.at(rows), labels[rows], spec, num_items_in_batch=num_items
        ).loss
        part.backward()
        total = total + part.detach()
    torch.testing.assert_close(total, full.detach())
    torch.testing.assert_close(micro_logits.grad, full_logits.grad)


def test_masked_positions_are_ignored():
    student, teacher, labels = toy(6)
    ids, lps, tail = sparse_targets(teacher, 4)
    mask = torch.ones(labels.shape, dtype=torch.bool)
    mask[:, -2:] = False
    base = distill_loss(student, TeacherTargets(ids, lps, tail), labels, mask=mask)

    garbage = student.clone()
    garbage[:, -2:] = 1e4  # anything at masked positions
    lps2 = lps.clone()
    lps2[:, -2:] = 0.0
    changed = distill_loss(garbage, TeacherTargets(ids, lps2, tail), labels, mask=mask)
    torch.testing.assert_close(changed.loss, base.loss)
    assert int(base.num_tokens) == int(mask.sum())

    # -100 labels mask a position for both terms
    labels2 = labels.clone()
    labels2[:, -2:] = -100
    garbage_targets = TeacherTargets(ids, lps2, tail)
    torch.testing.assert_close(distill_loss(garbage, garbage_targets, labels2).loss, base.loss)


def test_padded_topk_entries_are_ignored():
    student, teacher, labels = toy(7)
    ids, lps, tail = sparse_targets(teacher, 3)
    base = distill_loss(student, TeacherTargets(ids, lps, tail), labels)
    pad_ids = torch.cat([ids, torch.zeros_like(ids[..., :2])], -1)
    pad_lps = torch.cat([lps, torch.full_like(lps[..., :2], 5.0)], -1)  # garbage values
    topk_mask = torch.cat(
        [torch.ones_like(ids, dtype=torch.bool), torch.zeros_like(ids[..., :2], dtype=torch.bool)],
        -1,
    )
    padded = distill_loss(student, TeacherTargets(pad_ids, pad_lps, tail, topk_mask), labels)
    torch.testing.assert_close(padded.loss, base.loss)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_gradients_are_finite_in_extreme_cases(temperature):
    student, teacher, labels = toy(8)
    ids, lps, tail = sparse_targets(teacher, 4)
    extreme = student.clone()
    extreme.scatter_(-1, ids, 60.0)  # student puts all its mass on the teacher's top-k
    tail = torch.zeros_like(tail)  # and the teacher's tail is empty
    logits = extreme.requires_grad_(True)
    targets = TeacherTargets(ids, lps, tail)
    loss = distill_loss(logits, targets, labels, LossSpec(temperature=temperature)).loss
    loss.backward()
    assert torch.isfinite(loss)
    assert torch.isfinite(logits.grad).all()

    # a batch with no valid position reduces to a finite zero
    none = torch.full_like(labels, -100)
    empty = distill_loss(student.requires_grad_(True), targets, none).loss
    empty.backward()
    assert float(empty.detach()) == 0.0
