"""`distill eval` end to end on real checkpoints: the embedded teacher (no path given) and
the tiny random student, through the CLI."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from distill.cli import app
from tests.eval.fakes import QUESTIONS, mcq_file


@pytest.mark.slow
def test_cli_compares_the_embedded_teacher_and_a_checkpoint(tiny_student, tmp_path):
    out = tmp_path / "eval.json"
    run = CliRunner().invoke(
        app,
        ["eval", "hf:embedded", f"tiny={tiny_student}", "--questions", str(mcq_file(tmp_path)),
         "--out", str(out), "--limit", "4", "--rewordings", "1", "--max-new-tokens", "12",
         "--device", "cpu"],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    assert "eval ->" in run.output
    saved = json.loads(out.read_text())
    assert saved["count"] == 4 and [m["label"] for m in saved["models"]] == [
        "SmolLM2-135M-Instruct", "tiny",
    ]  # fmt: skip
    teacher = saved["models"][0]
    # The teacher answers in the asked format: an eval that extracted nothing fails here.
    assert teacher["overall"]["extraction"]["count"] >= 2
    assert (
        sum(a is not None for a in teacher["answers"]) == teacher["overall"]["extraction"]["count"]
    )
    references = [ref for _, _, ref, _ in QUESTIONS[:4]]
    for model in saved["models"]:
        right = sum(a == r for a, r in zip(model["answers"], references, strict=True))
        assert model["overall"]["accuracy"]["count"] == right
        assert len(model["permuted_answers"]) == len(model["reworded_answers"]) == 4
