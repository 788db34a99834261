"""Evaluating only on prompts a run held out: refused, skipped, or forced and labelled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from distill.cli import app
from distill.eval.heldout_check import TrainedPromptsError, eval_prompt_ids
from distill.eval.mcq import EvalConfig, evaluate_mcq
from distill.eval.models import resolve_models
from distill.eval.table import comparison_table
from distill.run_lineage import write_run_lineage
from distill.tasks.mcq import mmlu_prompt
from distill.tasks.mcq_variants import mcq_variants
from distill.tasks.mmlu import read_mcq_lines
from tests.eval.fakes import fake_loader, knows, mcq_file
from tests.factories import make_record, write_fake_dataset

HELD_OUT = (1, 2)  # questions 0-5 are in the dataset; 1 and 2 held out; 6 and 7 never seen
TRAINED = [0, 3, 4, 5]


def placeholder_checkpoint(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text("{}")
    return path


def make_run(tmp_path: Path, name: str = "kd", base: Path | None = None) -> Path:
    """A train run dir: lineage.json over a dataset asking questions 0-5, two held out."""
    questions = mcq_file(tmp_path)
    rows = [q.row for q in read_mcq_lines(questions)]
    records = [
        make_record(prompt=mmlu_prompt(row, "q", i + 1)[0], row=i) for i, row in enumerate(rows[:6])
    ]
    dataset = tmp_path / f"data-{name}"
    write_fake_dataset(dataset, records)
    run = tmp_path / name
    placeholder_checkpoint(run / "model")
    base = base or placeholder_checkpoint(run / "student_init")
    heldout = [records[i].prompt_id for i in HELD_OUT]
    write_run_lineage(run, dataset, "kd", heldout, 4, {"student": str(base)})
    return run


def behaviours() -> dict:
    return {"kd student": knows, "baseline": knows}


def test_questions_a_run_trained_on_are_refused(tmp_path):
    run = make_run(tmp_path)
    with pytest.raises(TrainedPromptsError, match=r"4 of 8 questions were trained on") as err:
        evaluate_mcq([str(run)], mcq_file(tmp_path), load=fake_loader(behaviours()))
    message = str(err.value)
    assert "first on line 1" in message and "its dataset has rows asking them" in message
    assert "\n" not in message


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path):
    run = make_run(tmp_path)
    result = CliRunner().invoke(app, ["eval", str(run), "--questions", str(mcq_file(tmp_path))])
    assert result.exit_code == 2
    text = " ".join(result.output.split())  # the console wraps the one line at its width
    assert text.startswith("error: ") and "were trained on by" in text
    assert "--force-trained" in text and "Traceback" not in text


def test_skip_leaves_only_held_out_questions(tmp_path):
    run = make_run(tmp_path)
    config = EvalConfig(trained="skip")
    result = evaluate_mcq([str(run)], mcq_file(tmp_path), config, load=fake_loader(behaviours()))
    assert [item.line for item in result.items] == [2, 3, 7, 8]
    assert result.skipped_trained == 4 and result.on_trained_prompts == 0
    assert [m.label for m in result.models] == ["baseline", "kd student"]
    assert not any(m.on_trained_prompts for m in result.models)
    assert result.heldout_check == {str(run): "dataset"}


def test_forced_evaluation_is_labelled(tmp_path):
    run = make_run(tmp_path)
    config = EvalConfig(trained="force")
    result = evaluate_mcq([str(run)], mcq_file(tmp_path), config, load=fake_loader(behaviours()))
    assert result.count == 8 and result.on_trained_prompts == 4
    assert [i for i, item in enumerate(result.items) if item.trained_by] == TRAINED
    labels = {m.label: m.on_trained_prompts for m in result.models}
    assert labels == {"baseline": False, "kd student": True}
    console = Console(record=True, width=300)
    console.print(comparison_table(result))
    text = console.export_text()
    assert "kd student [TRAINED PROMPTS]" in text and "4 questions were TRAINED ON" in text


def test_without_its_dataset_only_the_recorded_held_out_ids_vouch(tmp_path):
    from distill.gen.prompts import load_prompts

    questions = mcq_file(tmp_path)
    # the ids `distill gen --format mmlu` gives these questions, and the eval's own
    gen_ids = [row.prompt_id for row in load_prompts(questions, fmt="mmlu").rows]
    variants = mcq_variants(list(read_mcq_lines(questions)), str(questions), 0, 0)
    assert eval_prompt_ids(variants) == gen_ids
    run = make_run(tmp_path)
    lineage = json.loads((run / "lineage.json").read_text())
    lineage["heldout_prompt_ids"] = [gen_ids[1], gen_ids[6]]
    (run / "lineage.json").write_text(json.dumps(lineage))
    shutil.rmtree(lineage["dataset"])
    config = EvalConfig(trained="skip")
    result = evaluate_mcq([str(run)], questions, config, load=fake_loader(behaviours()))
    assert [item.line for item in result.items] == [2, 7]
    assert result.heldout_check == {str(run): "held-out ids"}
    with pytest.raises(TrainedPromptsError, match="not among its recorded held-out prompts"):
        evaluate_mcq([str(run)], questions, load=fake_loader(behaviours()))


def test_runs_give_students_and_one_shared_baseline_after_the_teacher(tmp_path):
    base = placeholder_checkpoint(tmp_path / "student_init")
    kd, sft = make_run(tmp_path, "kd", base), make_run(tmp_path, "sft-run", base)
    teacher = placeholder_checkpoint(tmp_path / "fake-teacher")  # the datasets' teacher
    other = placeholder_checkpoint(tmp_path / "other")
    models = resolve_models([str(kd), f"mine={sft}", f"hf:{other}", str(teacher)])
    assert [(m.label, m.role) for m in models] == [
        ("fake-teacher", "teacher"), ("baseline", "baseline"), ("kd student", "student"),
        ("mine", "student"), ("other", "model"),
    ]  # fmt: skip
    assert models[1].path == base and models[1].runs == (kd, sft)


@pytest.mark.parametrize(
    ("spec", "message"),
    [("hf:/no/such/dir", "not a Hugging Face checkpoint"), ("/no/such", "not a model spec")],
)
def test_a_bad_spec_is_named(spec, message):
    with pytest.raises(FileNotFoundError, match=message):
        resolve_models([spec])


def test_a_run_whose_base_is_gone_is_named(tmp_path):
    run = make_run(tmp_path)
    shutil.rmtree(run / "student_init")
    with pytest.raises(FileNotFoundError, match=r"config.student .* is not a checkpoint dir"):
        resolve_models([str(run)])
