"""Training on a GPU gives what training on the CPU gives (same data, seed and steps).

Self-contained: a word-level toy tokenizer and a random Llama on it, saved as a checkpoint
directory, so it needs neither the embedded teacher nor any file; skipped without a GPU
(CI has none; it runs where one is lent)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from distill.train import TrainConfig, build_random_student, train_student
from tests.factories import (
    make_record,
    teacher_for_tokenizer,
    write_fake_dataset,
    write_toy_checkpoint,
)

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
VOCAB = 512


@pytest.fixture(scope="module")
def toy_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint dir holding only a config and a toy tokenizer: the student's template."""
    return write_toy_checkpoint(tmp_path_factory.mktemp("toy"), VOCAB)


@pytest.fixture(scope="module")
def toy_dataset(toy_checkpoint: Path, tmp_path_factory) -> Path:
    teacher = teacher_for_tokenizer(toy_checkpoint, top_k=4, vocab_size=VOCAB)
    records = [make_record(row=i, n_tokens=6 + i % 4, teacher=teacher) for i in range(24)]
    out = tmp_path_factory.mktemp("data")
    write_fake_dataset(out, records)
    return out


@pytest.mark.parametrize("mode", ["sft", "kd"])
def test_gpu_training_matches_cpu(toy_checkpoint, toy_dataset, tmp_path, mode) -> None:
    student = build_random_student(toy_checkpoint, tmp_path / "student", hidden_size=32, seed=0)
    runs = {}
    for device, options in (("cpu", {"use_cpu": True}), ("cuda", {})):
        config = TrainConfig(
            mode=mode, student=student, max_steps=6, batch_size=4, seed=0, **options
        )
        result = train_student(toy_dataset, tmp_path / device, config)
        metrics = json.loads((tmp_path / device / "metrics.json").read_text())
        assert metrics["config"]["device"].startswith(device)
        runs[device] = result
    cpu, gpu = runs["cpu"], runs["cuda"]
    assert [s for s, _ in cpu.loss_curve] == [s for s, _ in gpu.loss_curve]
    for (_, a), (_, b) in zip(cpu.loss_curve, gpu.loss_curve, strict=True):
        assert abs(a - b) <= 1e-3 * max(1.0, abs(a)), (cpu.loss_curve, gpu.loss_curve)
    assert abs(cpu.heldout["kl"] - gpu.heldout["kl"]) <= 1e-3 * max(1.0, cpu.heldout["kl"])
    print(mode, "cpu", cpu.loss_curve[-1], "gpu", gpu.loss_curve[-1])
