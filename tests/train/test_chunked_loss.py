"""The chunked loss equals the loss on the full logits, value and gradients, for every
divergence and chunk size; gradient accumulation still adds up; the trainer uses it."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForCausalLM

from distill.store import read_table
from distill.train import KDConfig, KDTrainer
from distill.train.chunked_loss import chunked_distill_loss
from distill.train.losses import LossSpec, TeacherTargets, distill_loss
from distill.train.student import hidden_at
from tests.train.test_losses import sparse_targets

V, H, N, K = 40, 8, 13, 5


def toy_head(seed: int = 0, bias: bool = True):
    gen = torch.Generator().manual_seed(seed)
    hidden = torch.randn(N, H, generator=gen)
    weight = torch.randn(V, H, generator=gen)
    b = torch.randn(V, generator=gen) if bias else None
    targets = TeacherTargets(*sparse_targets(torch.randn(N, V, generator=gen) * 2, K))
    labels = torch.randint(0, V, (N,), generator=gen)
    labels[[2, 7]] = -100
    return hidden, weight, b, targets, labels


def leaves(*tensors):
    return [None if t is None else t.clone().requires_grad_(True) for t in tensors]


SPECS = [
    LossSpec(divergence="forward_kl"),
    LossSpec(divergence="reverse_kl", temperature=2.0),
    LossSpec(divergence="jsd", beta=0.3, alpha=0.8),
    LossSpec(divergence="jsd", beta=0.5, taid_t=0.6, alpha=1.0),
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("chunk_size", [1, 4, 100])
def test_chunked_equals_unchunked(spec, chunk_size):
    hidden, weight, bias, targets, labels = toy_head()
    h1, w1, b1 = leaves(hidden, weight, bias)
    full = distill_loss(h1 @ w1.T + b1, targets, labels, spec)
    full.loss.backward()
    h2, w2, b2 = leaves(hidden, weight, bias)
    chunked = chunked_distill_loss(h2, w2, b2, targets, labels, spec, chunk_size=chunk_size)
    chunked.loss.backward()
    for a, b in ((chunked.loss, full.loss), (chunked.kd, full.kd), (chunked.ce, full.ce)):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert int(chunked.num_tokens) == int(full.num_tokens) == N - 2
    for a, b in ((h2, h1), (w2, w1), (b2, b1)):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


def test_chunked_without_bias_and_without_grad():
    hidden, weight, _, targets, labels = toy_head(1, bias=False)
    full = distill_loss(hidden @ weight.T, targets, labels)
    with torch.no_grad():
        chunked = chunked_distill_loss(hidden, weight, None, targets, labels, chunk_size=3)
    torch.testing.assert_close(chunked.loss, full.loss, atol=1e-6, rtol=1e-6)
    assert chunked.loss.grad_fn is None
    with pytest.raises(ValueError, match="chunk_size"):
        chunked_distill_loss(hidden, weight, None, targets, labels, chunk_size=0)


@pytest.mark.parametrize("divergence", ["reverse_kl", "jsd"])
def test_gradient_accumulation_invariance(divergence):
    hidden, weight, bias, targets, labels = toy_head(2)
    spec = LossSpec(divergence=divergence, alpha=0.5, temperature=2.0)
    h1, w1, b1 = leaves(hidden, weight, bias)
    full = chunked_distill_loss(h1, w1, b1, targets, labels, spec, chunk_size=2).loss
    full.backward()
    h2, w2, b2 = leaves(hidden, weight, bias)
    num_items = int((labels != -100).sum())
    total = torch.zeros(())
    for rows in (slice(0, 3), slice(3, 10), slice(10, N)):
        part = chunked_distill_loss(
            h2[rows], w2, b2, targets.at(rows), labels[rows], spec,
            num_items_in_batch=num_items, chunk_size=2,
        ).loss  # fmt: skip
        part.backward()
        total = total + part.detach()
    torch.testing.assert_close(total, full.detach())
    for a, b in ((h2, h1), (w2, w1), (b2, b1)):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)


def test_kd_config_validates(tmp_path):
    common = {"output_dir": str(tmp_path), "report_to": "none", "use_cpu": True}
    for bad in (
        {"divergence": "kl"},
        {"beta": 1.5},
        {"alpha_schedule": "linear"},  # no alpha_end
        {"alpha_schedule": "cosine"},
        {"taid_t_start": -0.1},
        {"alpha_schedule": "taid_adaptive", "taid_momentum": 1.0},
        {"alpha_schedule": "taid_adaptive", "taid_step_size": -1.0},
        {"alpha_schedule": "taid_adaptive", "divergence": "sampled_ce"},
        {"chunk_size": 0},
    ):
        with pytest.raises(ValueError):
            KDConfig(**common, **bad)
    config = KDConfig(**common, alpha_schedule="linear", alpha_end=1.0, divergence="jsd")
    assert config.chunk_size == 1024 and config.beta == 0.5


def test_trainer_chunked_and_unchunked_agree(tiny_student, real_vocab_dataset, tmp_path):
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    table = read_table(real_vocab_dataset)
    config = KDConfig(
        output_dir=str(tmp_path), report_to="none", use_cpu=True, max_steps=10,
        max_length=None, divergence="jsd", alpha_schedule="taid", chunk_size=7,
    )  # fmt: skip
    trainer = KDTrainer(model, args=config, train_dataset=table.slice(0, 6))
    trainer.state.global_step, trainer.state.max_steps = 5, 10
    batch = trainer.data_collator([{"row_index": i} for i in range(6)])
    where = batch["target_mask"]
    assert hidden_at(model, batch["input_ids"], batch["attention_mask"], where) is not None
    results = []
    for chunk_size in (7, None):
        trainer.args.chunk_size = chunk_size
        model.zero_grad()
        loss = trainer.compute_loss(model, batch)
        loss.backward()
        results.append((loss.detach(), model.get_output_embeddings().weight.grad.clone()))
    assert trainer.loss_spec().taid_t == pytest.approx(0.7)
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-5, rtol=1e-6)
    torch.testing.assert_close(results[0][1], results[1][1], atol=1e-6, rtol=1e-4)
