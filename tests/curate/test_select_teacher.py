"""select_teacher: one row per prompt across teachers, the right one or the most confident."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from distill.curate import RejectReason, curate_dataset, load_recipe
from distill.curate.recipe import Recipe
from distill.curate.select_teacher import SelectTeacher
from distill.schemas import TeacherRecord
from distill.store import load_manifest, read_table
from tests.factories import fake_teacher, make_record, write_fake_dataset

TEACHER_A = fake_teacher().model_copy(update={"model_id": "teacher-a"})
TEACHER_B = fake_teacher().model_copy(update={"model_id": "teacher-b"})


def _records() -> list[TeacherRecord]:
    """Three prompts, two teachers, two samples each; answers chosen per row below."""
    answers = {  # (row, teacher, sample) -> response
        (0, "a", 0): "Answer: C",  # only B is right on prompt 0
        (0, "a", 1): "Answer: D",
        (0, "b", 0): "Answer: B",
        (0, "b", 1): "Answer: A",
        (1, "a", 0): "Answer: B",  # both right on prompt 1, once each
        (1, "a", 1): "Answer: C",
        (1, "b", 0): "Answer: B",
        (1, "b", 1): "no letter here",
        (2, "a", 0): "Answer: A",  # nobody right on prompt 2
        (2, "a", 1): "Answer: C",
        (2, "b", 0): "Answer: D",
        (2, "b", 1): "Answer: A",
    }
    teachers = {"a": TEACHER_A, "b": TEACHER_B}
    return [
        make_record(
            prompt=f"Question {row}?\nA. w\nB. x\nC. y\nD. z",
            response=text,
            row=row,
            sample_index=sample,
            teacher=teachers[name],
            seed=7 if name == "a" else 11,
        )
        for (row, name, sample), text in answers.items()
    ]


def _mean_logprob(record: TeacherRecord) -> float:
    return float(np.mean(record.sampled_logprob))


def _expected(records: list[TeacherRecord], keep: str) -> set[str]:
    """Independent choice: group by prompt, rank by (right first,) then mean log-prob."""
    chosen = set()
    for prompt in {r.prompt_id for r in records}:
        group = [r for r in records if r.prompt_id == prompt]

        def key(r: TeacherRecord) -> tuple:
            right = r.response_text.strip() == f"Answer: {r.reference}"
            score = -_mean_logprob(r)
            return (not right, score) if keep == "correct" else (score,)

        chosen.add(min(group, key=key).record_id)
    return chosen


def test_select_per_prompt_both_policies(tmp_path: Path) -> None:
    records = _records()
    write_fake_dataset(tmp_path / "gen", records)
    by_id = {r.record_id: r for r in records}
    for keep in ("correct", "most_confident"):
        recipe = Recipe(steps=[SelectTeacher(keep=keep)])
        result = curate_dataset(tmp_path / "gen", tmp_path / keep, recipe)
        kept = set(read_table(result.kept_dir)["record_id"].to_pylist())
        assert kept == _expected(records, keep), keep
        assert len(kept) == 3  # one per prompt
        rejected = read_table(result.rejected_dir).to_pylist()
        assert len(rejected) == 9
        for row in rejected:
            assert row["reject_reason"] == RejectReason.NOT_SELECTED.value
            details = json.loads(row["reject_details"])
            winner = by_id[details["kept"]]
            assert winner.prompt_id == row["prompt_id"]
            assert details["kept_teacher"] == winner.teacher_id
            assert details["teacher"] == row["teacher_id"]
            assert np.isclose(details["confidence"], _mean_logprob(by_id[row["record_id"]]), 1e-3)
        summary = load_manifest(result.kept_dir).steps[0]
        assert sum(summary["summary"]["kept_per_teacher"].values()) == 3
    # Under `correct`, prompt 0 must come from teacher B: only it answered B.
    kept = read_table(tmp_path / "correct")["record_id"].to_pylist()
    prompt0 = [by_id[k] for k in kept if by_id[k].prompt_id == "p00000"]
    assert [r.teacher_id for r in prompt0] == [TEACHER_B.teacher_id]


def test_per_prompt_two_and_recipe_file(tmp_path: Path) -> None:
    records = _records()
    write_fake_dataset(tmp_path / "gen", records)
    recipe_file = tmp_path / "recipe.yaml"
    recipe_file.write_text(
        "steps:\n  - name: select_teacher\n    keep: correct\n    per_prompt: 2\n"
    )
    result = curate_dataset(tmp_path / "gen", tmp_path / "out", load_recipe(recipe_file))
    kept = read_table(result.kept_dir)["prompt_id"].to_pylist()
    assert sorted(kept) == ["p00000", "p00000", "p00001", "p00001", "p00002", "p00002"]
    # Both right answers on prompt 1 survive (one per teacher).
    rows = [r for r in read_table(result.kept_dir).to_pylist() if r["prompt_id"] == "p00001"]
    assert {r["response_text"] for r in rows} == {"Answer: B"}
