"""On-policy GKD through TRL's GKDTrainer with the live embedded teacher (a few tiny steps)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, AutoTokenizer

from distill.store import read_table
from distill.train import GKDOptions, TrainConfig, build_random_student, train_student
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


TOPICS = ["rain", "bread", "music", "trees", "rivers", "cats", "winter", "books", "tea", "stars",
          "salt", "glass", "bees", "clocks", "maps", "boats", "snow", "paper", "milk", "wolves",
          "coins", "lamps", "sand", "kites"]  # fmt: skip
GKD_STEPS = 20


@pytest.fixture(scope="module")
def short_teacher_dataset(embedded_teacher, tmp_path_factory) -> Path:
    """The embedded teacher's own answers with its top-20, on short prompts (cheap steps)."""
    from distill.gen.runner import generate_dataset
    from distill.schemas import SamplingParams

    root = tmp_path_factory.mktemp("gkd-data")
    prompts = root / "prompts.jsonl"
    lines = [json.dumps({"prompt": f"Say one short sentence about {t}."}) for t in TOPICS]
    prompts.write_text("\n".join(lines) + "\n")
    sampling = SamplingParams(temperature=1.0, max_new_tokens=12, seed=0, n=2)
    generate_dataset(
        prompts, root / "data", teacher=embedded_teacher, top_k=20, sampling=sampling,
        progress=False,
    )  # fmt: skip
    return root / "data"


@pytest.mark.slow
def test_on_policy_gkd_moves_the_student_towards_the_teacher_and_a_control_does_not(
    short_teacher_dataset, tiny_student, teacher_dir, tmp_path
):
    """GKD against the live teacher vs a control run that differs only in the teacher: a
    random model of the student's shape (another seed). Same data, split, on-policy samples
    (lmbda = 1: every step trains on the student's own completions), loss (beta = 0: the
    forward KL, the divergence the held-out metric measures), optimiser and steps; the
    control's signal has the same form but carries nothing of the teacher. The student's
    held-out KL to the teacher's stored top-k (rows of prompts it never trained on) must
    fall, and fall further than the control's. (A frozen copy of the student as the
    teacher would be the degenerate control: loss and gradient 0, nothing moves.)"""
    control_teacher = build_random_student(
        teacher_dir, tmp_path / "random", hidden_size=16, num_layers=1, heads=2,
        intermediate=32, seed=1,
    )  # fmt: skip
    results = {}
    for name, live in (("gkd", teacher_dir), ("control", control_teacher)):
        config = TrainConfig(
            mode="gkd", student=tiny_student, max_steps=GKD_STEPS, batch_size=4,
            learning_rate=1e-2, heldout_fraction=0.25,
            gkd=GKDOptions(teacher=live, lmbda=1.0, beta=0.0, max_new_tokens=8),
        )  # fmt: skip
        results[name] = train_student(short_teacher_dataset, tmp_path / name, config)
    gkd, control = results["gkd"], results["control"]
    assert gkd.heldout_initial == control.heldout_initial  # same student, same rows
    assert gkd.heldout_rows >= 8
    before = gkd.heldout_initial["kl"]
    after_gkd, after_control = gkd.heldout["kl"], control.heldout["kl"]
    print(f"held-out KL {before:.4f}: gkd -> {after_gkd:.4f}, control -> {after_control:.4f}")
    assert before - after_gkd > 0.1 * before
    assert before - after_gkd > (before - after_control) + 0.5
