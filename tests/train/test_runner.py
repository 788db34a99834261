"""End to end: a few steps of SFT and KD on a tiny student over the real vocabulary."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.train import KDLossConfig, StudentMismatch, TrainConfig, train_student
from tests.factories import make_record, write_fake_dataset

KEYS = {
    "mode", "steps", "loss_curve", "heldout", "heldout_initial", "heldout_curve",
    "train_rows", "heldout_rows", "train_tokens", "heldout_tokens", "heldout_prompt_ids",
    "heldout_cap", "resumed_from_step",
    "seconds", "config",
}  # fmt: skip


@pytest.fixture(scope="module")
def runs(real_vocab_dataset, tiny_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    common = {"student": tiny_student, "max_steps": 3, "batch_size": 4, "eval_every": 2}
    return {
        mode: (
            train_student(real_vocab_dataset, out / mode, TrainConfig(mode=mode, **common)),
            out / mode,
        )
        for mode in ("sft", "kd")
    }


@pytest.mark.parametrize("mode", ["sft", "kd"])
def test_metrics_json_and_model_dir(runs, mode):
    result, out = runs[mode]
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == KEYS
    assert metrics["mode"] == mode and metrics["steps"] == 3
    assert [step for step, _ in metrics["loss_curve"]] == [1, 2, 3]
    assert all(math.isfinite(loss) for _, loss in metrics["loss_curve"])
    for key in ("heldout", "heldout_initial"):
        assert math.isfinite(metrics[key]["kl"]) and math.isfinite(metrics[key]["nll"])
        assert metrics[key]["tokens"] > 0
    assert [p["step"] for p in metrics["heldout_curve"]] == [2]
    assert metrics["train_rows"] + metrics["heldout_rows"] == 20
    assert metrics["heldout_tokens"] == metrics["heldout"]["tokens"] > 0
    assert len(metrics["heldout_prompt_ids"]) == metrics["heldout_rows"]  # 1 sample a prompt
    assert result.model_dump(mode="json", exclude={"model_dir"}) == metrics
    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert model.config.vocab_size == 49152
    AutoTokenizer.from_pretrained(out / "model")


def test_both_modes_share_split_init_and_data_order(runs):
    sft, kd = runs["sft"][0], runs["kd"][0]
    assert sft.heldout_initial == kd.heldout_initial
    assert sft.heldout_rows == kd.heldout_rows
    assert kd.config["kd"]["alpha"] == 0.5 and "kd" not in sft.config


def test_kd_with_alpha_zero_retraces_sft(real_vocab_dataset, tiny_student, runs, tmp_path):
    """Same init, same batches in the same order: with the KD term off, the curves coincide."""
    config = TrainConfig(
        mode="kd", student=tiny_student, max_steps=3, batch_size=4, kd=KDLossConfig(alpha=0.0)
    )
    kd0 = train_student(real_vocab_dataset, tmp_path, config)
    sft = runs["sft"][0]
    for (s1, l1), (s2, l2) in zip(kd0.loss_curve, sft.loss_curve, strict=True):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-5)


def test_gradient_accumulation_leaves_the_kd_loss_unchanged(
    real_vocab_dataset, tiny_student, tmp_path
):
    common = {"mode": "kd", "student": tiny_student, "max_steps": 1, "heldout_fraction": 0.0}
    full = train_student(real_vocab_dataset, tmp_path / "a", TrainConfig(batch_size=4, **common))
    split = train_student(
        real_vocab_dataset, tmp_path / "b",
        TrainConfig(batch_size=2, gradient_accumulation_steps=2, **common),
    )  # fmt: skip
    assert split.loss_curve[0][1] == pytest.approx(full.loss_curve[0][1], rel=1e-5)


def test_sft_backends_agree(real_vocab_dataset, tiny_student, runs, tmp_path):
    config = TrainConfig(
        mode="sft", student=tiny_student, max_steps=1, batch_size=4, sft_backend="trl"
    )
    trl = train_student(real_vocab_dataset, tmp_path, config)
    records = runs["sft"][0]
    assert trl.loss_curve[0][1] == pytest.approx(records.loss_curve[0][1], rel=1e-4)


def test_incompatible_dataset_is_refused_before_training(tiny_student, tmp_path):
    write_fake_dataset(tmp_path / "ds", [make_record(row=i) for i in range(4)])
    with pytest.raises(StudentMismatch, match="tokenizer hash"):
        config = TrainConfig(mode="kd", student=tiny_student, max_steps=1)
        train_student(tmp_path / "ds", tmp_path / "out", config)
    assert not (tmp_path / "out" / "model").exists()


def test_kd_options_reach_the_trainer_and_the_metrics(real_vocab_dataset, tiny_student, tmp_path):
    common = {"mode": "kd", "student": tiny_student, "max_steps": 2, "batch_size": 2, "seed": 0}
    forward = train_student(real_vocab_dataset, tmp_path / "f", TrainConfig(**common))
    reverse = train_student(
        real_vocab_dataset,
        tmp_path / "r",
        TrainConfig(kd=KDLossConfig(divergence="reverse_kl", chunk_size=4), **common),
    )
    kd = reverse.config["kd"]
    assert kd["divergence"] == "reverse_kl" and kd["chunk_size"] == 4
    # a different divergence is a different loss from the first step on
    assert reverse.loss_curve[0][1] != pytest.approx(forward.loss_curve[0][1], abs=1e-6)
    with pytest.raises(ValueError, match="divergence"):
        TrainConfig(kd={"divergence": "nope"}, **common)


def test_heldout_eval_scores_the_curve_and_both_ends(real_vocab_dataset, tiny_student, tmp_path):
    seen = []

    def evaluate(model, rows):
        seen.append((model.training, rows.column("record_id").to_pylist()))
        return {"kl": float(len(seen)), "nll": 0.0}

    config = TrainConfig(
        mode="kd", student=tiny_student, max_steps=4, batch_size=2, eval_every=2,
        kd=KDLossConfig(alpha_schedule="taid_adaptive", taid_step_size=0.5),
    )  # fmt: skip
    result = train_student(real_vocab_dataset, tmp_path / "o", config, heldout_eval=evaluate)
    assert result.heldout_initial["kl"] == 1.0 and result.heldout["kl"] == 4.0
    assert [(p["step"], p["kl"]) for p in result.heldout_curve] == [(2, 2.0), (4, 3.0)]
    assert len({tuple(ids) for _, ids in seen}) == 1 and len(seen[0][1]) == result.heldout_rows
    assert result.config["kd"]["alpha_schedule"] == "taid_adaptive"
    assert all(math.isfinite(loss) for _, loss in result.loss_curve)
