"""Adaptive TAID (Shing et al., 2025): the interpolated target over the k + 1 buckets, the
update rule of t against hand computation, its bounds, and the trainer that carries it."""

from __future__ import annotations

import itertools
import json
import math

import pytest
import torch
from transformers import AutoModelForCausalLM

from distill.store import read_table
from distill.train import KDConfig, KDTrainer
from distill.train.losses import (
    LossSpec,
    TeacherTargets,
    bucket_logprobs,
    distill_loss,
    sparse_divergence_per_token,
)
from distill.train.schedules import TaidState, taid_start, taid_update
from tests.train.test_losses import sparse_targets, toy


@pytest.mark.parametrize("k", [1, 5])
def test_t_equal_one_is_the_plain_forward_kl(k):
    student, teacher, labels = toy(11)
    targets = TeacherTargets(*sparse_targets(teacher, k))
    grads = []
    for t in (None, 1.0):
        s = student.clone().requires_grad_(True)
        per_token = sparse_divergence_per_token(s, targets, LossSpec(taid_t=t))
        loss = distill_loss(s, targets, labels, LossSpec(alpha=0.7, taid_t=t)).loss
        loss.backward()
        grads.append((per_token.detach(), loss.detach(), s.grad))
    for plain, interpolated in zip(grads[0], grads[1], strict=True):
        torch.testing.assert_close(interpolated, plain, rtol=0, atol=0)


def test_gradient_flows_only_through_the_student_term():
    """The loss's gradient is that of -sum p_t log q with p_t a constant computed by hand:
    no gradient through the student's share of the target."""
    student, teacher, _ = toy(12)
    targets = TeacherTargets(*sparse_targets(teacher, 4))
    lam = 0.3
    s1 = student.clone().requires_grad_(True)
    sparse_divergence_per_token(s1, targets, LossSpec(taid_t=lam)).sum().backward()

    s2 = student.clone().requires_grad_(True)
    log_q, log_p, _ = bucket_logprobs(torch.log_softmax(s2, -1), targets)
    with torch.no_grad():  # the target, from the definition: a renormalised geometric mix
        mix = log_p.exp() ** lam * log_q.exp() ** (1 - lam)
        p_t = mix / mix.sum(-1, keepdim=True)
    (p_t * (p_t.log() - log_q)).sum().backward()
    torch.testing.assert_close(s1.grad, s2.grad, atol=1e-6, rtol=1e-5)
    # and the student's share really is held fixed: a gradient through it would differ
    s3 = student.clone().requires_grad_(True)
    log_q3, log_p3, _ = bucket_logprobs(torch.log_softmax(s3, -1), targets)
    live = torch.log_softmax(lam * log_p3 + (1 - lam) * log_q3, -1)
    (live.exp() * (live - log_q3)).sum().backward()
    assert not torch.allclose(s3.grad, s1.grad, atol=1e-4)


def test_update_rule_by_hand():
    """Three steps with the paper's formula written out, then one where the ramp wins."""
    t_start, step, beta, steps = 0.4, 0.1, 0.9, 100
    s = taid_start(t_start)
    s = taid_update(s, 2.0, 1 / steps, t_start, step, beta)  # first call: records the loss
    assert s == TaidState(t=0.4, prev_loss=2.0, momentum=0.0)

    s = taid_update(s, 1.5, 2 / steps, t_start, step, beta)
    # change (2.0 - 1.5) / 2.0 = 0.25; m = 0.1 * 0.25 = 0.025
    # dt = 0.1 * sigmoid(0.025) * (1 - 0.4) = 0.1 * 0.5062497 * 0.6 = 0.03037498
    # ramp 0.4 + 0.6 * 0.02 = 0.412 < 0.43037498
    assert s.momentum == pytest.approx(0.025)
    assert s.t == pytest.approx(0.4 + 0.1 * 0.6 / (1 + math.exp(-0.025)))
    assert s.t == pytest.approx(0.43037498, abs=1e-8)

    s = taid_update(s, 1.8, 3 / steps, t_start, step, beta)
    # change (1.5 - 1.8) / 1.5 = -0.2; m = 0.9 * 0.025 + 0.1 * -0.2 = 0.0025
    # dt = 0.1 * sigmoid(0.0025) * (1 - 0.43037498) = 0.02851435
    assert s.momentum == pytest.approx(0.0025)
    assert s.t == pytest.approx(0.43037498 + 0.1 * 0.56962502 / (1 + math.exp(-0.0025)))
    assert s.prev_loss == 1.8

    # a tiny step size: the linear ramp (t_start -> 1 over training) is the floor
    slow = taid_update(s, 1.7, 0.5, t_start, step_size=1e-6, momentum=beta)
    assert slow.t == pytest.approx(0.4 + 0.6 * 0.5)
    assert taid_update(slow, 1.6, 1.0, t_start, 1e-6, beta).t == 1.0


@pytest.mark.parametrize("step_size", [5e-4, 0.05, 1.0])
def test_t_stays_in_range_and_never_decreases(step_size):
    gen = torch.Generator().manual_seed(0)
    # falling, rising, flat and blowing-up losses (a relative change of -1e12)
    losses = [*torch.rand(40, generator=gen).mul(5).tolist(), 1e-12, 1.0, 1.0, 1e6, 0.0, 3.0]
    state, ts = taid_start(0.25), []
    for i, loss in enumerate(losses):
        state = taid_update(state, loss, i / len(losses), 0.25, step_size, 0.9)
        ts.append(state.t)
    assert all(0.25 <= t <= 1.0 for t in ts)
    assert all(b >= a for a, b in itertools.pairwise(ts))
    assert taid_update(state, 1.0, 1.0, 0.25, step_size, 0.9).t == 1.0


def test_trainer_moves_t_once_per_optimiser_step(tiny_student, real_vocab_dataset, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_student).train()  # loads in eval mode
    config = KDConfig(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=10,
        max_length=None, alpha_schedule="taid_adaptive", taid_t_start=0.3,
        taid_step_size=0.9, taid_momentum=0.5,
    )  # fmt: skip
    trainer = KDTrainer(model, args=config, train_dataset=read_table(real_vocab_dataset))
    trainer.state.max_steps = 10
    batches = [trainer.data_collator([{"row_index": i + j} for j in range(3)]) for i in (0, 3)]
    expected, kd_losses = taid_start(0.3), []
    for step in range(3):
        trainer.state.global_step = step
        per_batch = []
        for batch in batches:  # two micro-batches of one accumulated step, one t
            trainer.compute_loss(model, batch)
            per_batch.append(trainer._metrics["train"]["kd_kl"][-1])
            assert trainer._metrics["train"]["taid_t"][-1] == pytest.approx(expected.t)
        kd_losses.append(sum(per_batch) / 2)
        expected = taid_update(expected, kd_losses[-1], (step + 1) / 10, 0.3, 0.9, 0.5)
    trainer.state.global_step = 3
    model.eval()  # an evaluation's loss must not move t
    trainer.compute_loss(model, batches[0])
    model.train()
    trainer.compute_loss(model, batches[0])
    assert trainer.taid.t == pytest.approx(expected.t)
    assert trainer.taid.prev_loss == pytest.approx(kd_losses[-1])
    assert trainer.taid.t > 0.3 + 0.7 * 0.3  # above the linear ramp: the adaptive part moved it


def test_cli_train_takes_the_adaptive_schedule(real_vocab_dataset, tiny_student, tmp_path):
    from typer.testing import CliRunner

    from distill.cli import app

    run = CliRunner().invoke(
        app,
        [
            "train", str(real_vocab_dataset), "--out", str(tmp_path), "--mode", "kd",
            "--student", str(tiny_student), "--max-steps", "2", "--batch-size", "2",
            "--alpha-schedule", "taid_adaptive", "--taid-t-start", "0.6",
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    config = json.loads((tmp_path / "metrics.json").read_text())["config"]
    assert config["kd"]["alpha_schedule"] == "taid_adaptive"
    assert config["kd"]["taid_t_start"] == 0.6
    assert config["kd"]["divergence"] is None  # not given: the dataset's targets decide
