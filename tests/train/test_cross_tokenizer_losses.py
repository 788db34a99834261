"""ULD and the hybrid loss on toy tensors, against closed forms computed in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from distill.train.cross_tokenizer_losses import (
    CrossLossSpec,
    CrossTargets,
    cross_distill_loss,
    cross_kd_per_token,
    hybrid_per_token,
    mapped_mass,
    uld_per_token,
)
from distill.train.losses import TeacherTargets, sparse_kl_per_token


def _teacher(probs: np.ndarray, ids: np.ndarray, mask: np.ndarray | None = None) -> TeacherTargets:
    """Stored top-k of these probabilities (`[N, k]`), the tail being the rest."""
    p = np.where(mask, probs, 0.0) if mask is not None else probs
    return TeacherTargets(
        torch.tensor(ids),
        torch.tensor(np.log(np.where(p > 0, p, 1.0)), dtype=torch.float32),
        torch.tensor(1.0 - p.sum(-1), dtype=torch.float32),
        None if mask is None else torch.tensor(mask),
    )


def _log_q(probs: np.ndarray) -> torch.Tensor:
    return torch.tensor(np.log(probs), dtype=torch.float64)


def _uld_numpy(p_k: np.ndarray, tail: float, q: np.ndarray) -> float:
    k = p_k.size
    p_sorted = np.sort(p_k)[::-1]
    q_sorted = np.sort(q)[::-1][:k]
    return float(np.abs(p_sorted - q_sorted).sum() + abs(tail - (1 - q_sorted.sum())))


def test_uld_is_zero_for_identical_distributions():
    q = np.array([[0.05, 0.4, 0.3, 0.15, 0.1]])
    ids = np.array([[1, 2, 3]])  # the teacher's top 3, in any vocabulary
    got = uld_per_token(_log_q(q), _teacher(q[:, [1, 2, 3]], ids))
    assert float(got) == pytest.approx(0.0, abs=1e-6)


def test_uld_equals_its_closed_form():
    rng = np.random.default_rng(3)
    p_full = rng.dirichlet(np.ones(9), size=4)
    q = rng.dirichlet(np.ones(6), size=4)
    order = np.argsort(-p_full, axis=-1)[:, :3]
    p_k = np.take_along_axis(p_full, order, -1)
    got = uld_per_token(_log_q(q), _teacher(p_k, order)).numpy()
    expected = [_uld_numpy(p_k[i], 1 - p_k[i].sum(), q[i]) for i in range(4)]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_uld_with_the_whole_vocabulary_is_the_papers_sorted_l1():
    # k = teacher vocab (tail 0): sum_i |sort(p)_i - sort(q)_i|, the smaller vocab zero-padded
    p = np.array([[0.1, 0.6, 0.3]])
    q = np.array([[0.2, 0.1, 0.25, 0.05, 0.4]])
    padded = np.sort(np.r_[p[0], 0.0, 0.0])[::-1]
    expected = np.abs(padded - np.sort(q[0])[::-1]).sum()
    got = uld_per_token(_log_q(q), _teacher(p, np.array([[0, 1, 2]])))
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_uld_zero_pads_a_position_with_fewer_stored_entries():
    p = np.array([[0.5, 0.2, 0.9]])
    mask = np.array([[True, True, False]])
    q = np.array([[0.1, 0.3, 0.6]])
    got = uld_per_token(_log_q(q), _teacher(p, np.array([[4, 7, 0]]), mask))
    expected = _uld_numpy(np.array([0.5, 0.2, 0.0]), 0.3, q[0])
    assert float(got) == pytest.approx(expected, rel=1e-5)


def test_hybrid_is_the_bucketed_kl_when_every_token_maps_one_to_one():
    rng = np.random.default_rng(5)
    logits = torch.tensor(rng.normal(size=(3, 8)), dtype=torch.float32)
    p_full = rng.dirichlet(np.ones(8), size=3)
    ids = np.argsort(-p_full, axis=-1)[:, :4]
    teacher = _teacher(np.take_along_axis(p_full, ids, -1), ids)
    log_q = torch.log_softmax(logits, dim=-1)
    nobody = torch.zeros(8, dtype=torch.bool)
    got = hybrid_per_token(log_q, CrossTargets(teacher, torch.tensor(ids)), nobody)
    torch.testing.assert_close(got, sparse_kl_per_token(logits, teacher))
    # and with k = vocab size, the exact dense KL
    all_ids = np.tile(np.arange(8), (3, 1))
    dense = hybrid_per_token(
        log_q.double(), CrossTargets(_teacher(p_full, all_ids), torch.tensor(all_ids)), nobody
    )
    q = log_q.double().exp().numpy()
    np.testing.assert_allclose(dense.numpy(), (p_full * np.log(p_full / q)).sum(-1), rtol=1e-5)


def test_hybrid_mixes_exact_kl_and_uld_as_documented():
    # teacher top-3 over its own ids 10, 11, 12 with p = .5, .3, .1 and tail .1;
    # 10 -> student 0 and 11 -> student 2 map one-to-one, 12 does not.
    q = np.array([[0.4, 0.1, 0.2, 0.25, 0.05]])
    student_ids = torch.tensor([[0, 2, -1]])
    unmatched_student = torch.tensor([False, True, False, True, True])
    teacher = _teacher(np.array([[0.5, 0.3, 0.1]]), np.array([[10, 11, 12]]))
    got = hybrid_per_token(_log_q(q), CrossTargets(teacher, student_ids), unmatched_student)
    rest_p, rest_q = 0.1 + 0.1, 1 - 0.4 - 0.2
    kl = 0.5 * np.log(0.5 / 0.4) + 0.3 * np.log(0.3 / 0.2) + rest_p * np.log(rest_p / rest_q)
    uld = abs(0.1 - 0.25)  # the one unmatched entry against the largest free student prob
    assert float(got) == pytest.approx(kl + uld, rel=1e-5)
    assert float(mapped_mass(CrossTargets(teacher, student_ids))) == pytest.approx(0.8)


def test_hybrid_is_zero_for_identical_distributions_with_nothing_mapped():
    q = np.array([[0.1, 0.5, 0.25, 0.15]])
    teacher = _teacher(np.array([[0.5, 0.25]]), np.array([[7, 3]]))
    nothing = torch.tensor([[-1, -1]])
    got = hybrid_per_token(_log_q(q), CrossTargets(teacher, nothing), torch.ones(4, dtype=bool))
    assert float(got) == pytest.approx(0.0, abs=1e-6)


def test_cross_losses_have_finite_gradients():
    logits = torch.randn(5, 11, requires_grad=True)
    p = np.full((5, 3), 0.3)
    ids = np.tile([1, 2, 3], (5, 1))
    teacher = _teacher(p, ids, np.array([[True, True, False]] * 5))
    log_q = torch.log_softmax(logits, dim=-1)
    free = torch.arange(11) > 5
    mapped = torch.tensor([[0, -1, 4]] * 5)
    loss = (
        uld_per_token(log_q, teacher).sum()
        + hybrid_per_token(log_q, CrossTargets(teacher, mapped), free).sum()
    )
    loss.backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", ["uld", "hybrid"])
def test_cross_loss_adds_up_over_gradient_accumulation(loss):
    """Two micro-batches divided by the whole batch's token count sum to the full batch's
    loss; KD counts only at aligned positions, CE everywhere."""
    rng = np.random.default_rng(11)
    logits = torch.tensor(rng.normal(size=(6, 9)), dtype=torch.float32)
    labels = torch.tensor(rng.integers(0, 9, size=6))
    p = rng.dirichlet(np.ones(12), size=6)
    ids = np.argsort(-p, axis=-1)[:, :3]
    targets = CrossTargets(
        _teacher(np.take_along_axis(p, ids, -1), ids), torch.tensor([[0, -1, 4]] * 6)
    )
    aligned = torch.tensor([True, False, True, True, False, True])
    spec = CrossLossSpec(loss, 0.5, torch.arange(9) > 4)
    full = cross_distill_loss(logits, targets, labels, aligned, spec)
    parts = []
    for h in (slice(0, 2), slice(2, 6)):
        micro = CrossTargets(targets.teacher.at(h), targets.student_ids[h])
        parts.append(
            cross_distill_loss(logits[h], micro, labels[h], aligned[h], spec, num_items_in_batch=6)
        )
    torch.testing.assert_close(parts[0].loss + parts[1].loss, full.loss)
    # the KD term is the per-token loss at aligned positions over all 6 positions
    log_q = torch.log_softmax(logits, dim=-1)
    at = CrossTargets(targets.teacher.at(aligned), targets.student_ids[aligned])
    kd = cross_kd_per_token(log_q[aligned], at, loss, spec.unmatched_student).sum() / 6
    torch.testing.assert_close(full.kd, kd)
