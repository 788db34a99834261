"""LoRA students: only the adapters learn, and the saved model is the merged plain model."""

from __future__ import annotations

import json

import pytest
import torch
from pydantic import ValidationError
from transformers import AutoModelForCausalLM

from distill.store import read_table
from distill.train import TrainConfig, heldout_metrics, train_student
from distill.train.lora import LoraOptions, apply_lora, merged_for_saving, parameter_counts

pytest.importorskip("peft")


@pytest.fixture(scope="module")
def lora_run(real_vocab_dataset, tiny_student, tmp_path_factory):
    out = tmp_path_factory.mktemp("lora")
    config = TrainConfig(
        mode="kd", student=tiny_student, max_steps=2, batch_size=4, lora=LoraOptions(r=4),
        eval_every=1,
    )  # fmt: skip
    result = train_student(real_vocab_dataset, out, config)
    return result, out


def test_only_adapters_get_gradients(tiny_student):
    model = apply_lora(AutoModelForCausalLM.from_pretrained(tiny_student), LoraOptions())
    ids = torch.randint(0, 1000, (2, 6), generator=torch.Generator().manual_seed(0))
    model(input_ids=ids, labels=ids).loss.backward()
    graded = {n for n, p in model.named_parameters() if p.grad is not None}
    assert graded and all("lora_" in n for n in graded)
    assert all(p.grad is None for n, p in model.named_parameters() if "lora_" not in n)
    counts = parameter_counts(model)
    assert 0 < counts["trainable"] < 0.1 * counts["total"]


def test_wrapped_student_evaluates_like_the_base(tiny_student, real_vocab_dataset):
    """Adapters start at zero, and the evaluation path unwraps peft to reach the backbone."""
    table = read_table(real_vocab_dataset).slice(0, 4)
    base = AutoModelForCausalLM.from_pretrained(tiny_student)
    before = heldout_metrics(base, table)
    wrapped = apply_lora(base, LoraOptions())
    assert heldout_metrics(wrapped, table) == pytest.approx(before, rel=1e-5)
    assert type(merged_for_saving(wrapped)).__name__ == "LlamaForCausalLM"


def test_lora_kd_run_writes_metrics_and_a_loadable_merged_model(lora_run, tiny_student):
    result, out = lora_run
    assert result.steps == 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2 and len(metrics["heldout_curve"]) == 2
    assert metrics["config"]["lora"]["r"] == 4 and metrics["config"]["dtype"] == "float32"
    params = metrics["config"]["parameters"]
    assert 0 < params["trainable"] < 0.1 * params["total"]
    assert (out / "adapter" / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out / "model")
    init = AutoModelForCausalLM.from_pretrained(tiny_student)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    # frozen embedding, changed projections (the adapters were folded in)
    assert torch.equal(merged.get_input_embeddings().weight, init.get_input_embeddings().weight)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(merged.state_dict()[q], init.state_dict()[q])


def test_lora_options_are_checked(real_vocab_dataset, tiny_student, tmp_path):
    with pytest.raises(ValidationError):
        TrainConfig(mode="kd", student=tiny_student, lora={"rank": 4})
    with pytest.raises(ValueError, match="target_modules"):
        apply_lora(
            AutoModelForCausalLM.from_pretrained(tiny_student),
            LoraOptions(target_modules=["c_attn"]),
        )


def test_bf16_lora_smoke(real_vocab_dataset, tiny_student, tmp_path):
    config = TrainConfig(
        mode="kd", student=tiny_student, max_steps=1, batch_size=2, lora=LoraOptions(),
        dtype="bfloat16", heldout_fraction=0.0,
    )  # fmt: skip
    result = train_student(real_vocab_dataset, tmp_path, config)
    assert result.steps == 1 and result.config["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(tmp_path / "model")
    assert model.config.dtype == torch.bfloat16


def test_cli_lora_r(real_vocab_dataset, tiny_student, tmp_path):
    from typer.testing import CliRunner

    from distill.cli import app

    run = CliRunner().invoke(
        app,
        [
            "train", str(real_vocab_dataset), "--out", str(tmp_path), "--mode", "kd",
            "--student", str(tiny_student), "--max-steps", "1", "--batch-size", "2",
            "--lora-r", "2",
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    lora = json.loads((tmp_path / "metrics.json").read_text())["config"]["lora"]
    assert lora["r"] == 2 and lora["alpha"] == 4.0
