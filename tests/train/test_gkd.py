"""On-policy GKD through TRL's GKDTrainer with the live embedded teacher (a few tiny steps)."""

from __future__ import annotations

import json
import math

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.store import read_table
from distill.train import GKDOptions, TrainConfig, train_student
from distill.train.gkd import gkd_classes, gkd_dataset


def test_gkd_dataset_keeps_ids_and_marks_the_completion(real_vocab_dataset, teacher_dir):
    table = read_table(real_vocab_dataset).slice(0, 3)
    rows = gkd_dataset(table)
    for row, p, r in zip(
        rows, table["prompt_token_ids"].to_pylist(), table["token_ids"].to_pylist(), strict=True
    ):
        assert row["input_ids"] == p + r
        assert row["completion_mask"] == [0] * len(p) + [1] * len(r)
    # TRL's own collator accepts them without re-tokenising
    gkd_classes()  # silences TRL's experimental notice before the import below
    from trl.experimental.utils import DataCollatorForChatML

    collator = DataCollatorForChatML(AutoTokenizer.from_pretrained(teacher_dir))
    batch = collator([rows[0]])
    assert batch["prompts"][0].tolist() == table["prompt_token_ids"][0].as_py()


def test_gkd_two_on_policy_steps(real_vocab_dataset, tiny_student, teacher_dir, tmp_path):
    gkd_classes()  # importable on this TRL
    config = TrainConfig(
        mode="gkd", student=tiny_student, max_steps=2, batch_size=2, eval_every=2,
        gkd=GKDOptions(teacher=teacher_dir, max_new_tokens=3, lmbda=1.0, beta=0.5),
    )  # fmt: skip
    result = train_student(real_vocab_dataset, tmp_path, config)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["mode"] == "gkd" and metrics["steps"] == 2
    assert all(math.isfinite(loss) for _, loss in metrics["loss_curve"])
    gkd = metrics["config"]["gkd"]
    assert gkd["lmbda"] == 1.0 and gkd["teacher"] == str(teacher_dir)
    assert [p["step"] for p in metrics["heldout_curve"]] == [2]
    assert result.heldout["tokens"] > 0
    AutoModelForCausalLM.from_pretrained(tmp_path / "model")


def test_unknown_gkd_option_is_refused(tiny_student):
    with pytest.raises(ValueError, match=r"gkd\.lambda"):
        TrainConfig(mode="gkd", student=tiny_student, gkd={"lambda": 1})
