"""Several teachers into one dataset: per-teacher records, one manifest, one resume rule,
and `select_teacher` picking per prompt across them (issue #3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from distill.cli import app
from distill.curate import curate_dataset
from distill.curate.recipe import Recipe
from distill.curate.select_teacher import SelectTeacher
from distill.gen.resume import check_joinable, run_history
from distill.schemas import Manifest, TeacherInfo
from distill.store import load_manifest, read_table
from distill.teachers.embedded import embedded_teacher_dir
from distill.train.student import build_random_student
from tests.factories import fake_teacher

pytestmark = pytest.mark.slow

QUESTIONS = [
    ("Which planet is closest to the sun?", "A. Venus\nB. Mercury\nC. Mars\nD. Earth", "B"),
    ("What is 3 + 4?", "A. 7\nB. 6\nC. 8\nD. 5", "A"),
    ("Which gas do plants take in?", "A. Oxygen\nB. Helium\nC. Carbon dioxide\nD. Neon", "C"),
]


@pytest.fixture(scope="module")
def second_teacher(tmp_path_factory) -> Path:
    """A second local model with the embedded teacher's tokenizer (random weights)."""
    return build_random_student(embedded_teacher_dir(), tmp_path_factory.mktemp("t2"))


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [
        {"prompt": f"{q}\n{options}\nAnswer with the letter.", "reference": ref, "domain": "quiz"}
        for q, options, ref in QUESTIONS
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def _gen(prompts: Path, out: Path, *teachers: str) -> object:
    args = ["gen", str(prompts), "--out", str(out), "--n", "2", "--temperature", "0.8"]
    args += ["--max-new-tokens", "6", "--top-k", "5"]
    for teacher in teachers:
        args += ["--teacher", teacher]
    return CliRunner().invoke(app, args)


def test_two_teachers_one_dataset_resume_and_select(second_teacher, tmp_path: Path) -> None:
    prompts, out = _prompts(tmp_path), tmp_path / "gen"
    teachers = ("hf:embedded", f"hf:{second_teacher}")
    result = _gen(prompts, out, *teachers)
    assert result.exit_code == 0, result.output
    manifest = load_manifest(out)
    ids = [t.teacher_id for t in manifest.teachers]
    assert len(ids) == 2 and len(set(ids)) == 2
    table = read_table(out)
    assert table.num_rows == len(QUESTIONS) * 2 * 2
    per_teacher = {t: table["teacher_id"].to_pylist().count(t) for t in ids}
    assert per_teacher == {ids[0]: 6, ids[1]: 6}
    # The same command again sends nothing: the key holds the teacher.
    again = _gen(prompts, out, *teachers)
    assert again.exit_code == 0, again.output
    assert again.output.count("wrote 0 records") == 2
    assert read_table(out).num_rows == 12
    assert [t.teacher_id for t in load_manifest(out).teachers] == ids
    # Every run is kept with its teacher and counts, not only the latest one.
    runs = load_manifest(out).stats["runs"]
    assert [(r["teacher_id"], r["written"]) for r in runs] == [
        (ids[0], 6), (ids[1], 6), (ids[0], 0), (ids[1], 0)
    ]  # fmt: skip
    assert len({r["run_id"] for r in runs}) == 4
    # Per prompt, one row survives; the drops name the row and teacher kept instead.
    recipe = Recipe(steps=[SelectTeacher(keep="most_confident")])
    curated = curate_dataset(out, tmp_path / "cur", recipe)
    kept = read_table(curated.kept_dir).to_pylist()
    assert sorted(r["prompt_id"] for r in kept) == sorted(set(table["prompt_id"].to_pylist()))
    by_id = {r["record_id"]: r for r in table.to_pylist()}
    for row in read_table(curated.rejected_dir).to_pylist():
        details = json.loads(row["reject_details"])
        winner = by_id[details["kept"]]
        assert winner["prompt_id"] == row["prompt_id"]
        assert details["kept_confidence"] >= details["confidence"]


def test_teacher_with_other_tokenizer_or_k_cannot_join(tmp_path: Path) -> None:
    first = fake_teacher(top_k=4)
    ok = first.model_copy(update={"model_id": "other"})
    check_joinable(tmp_path, first, ok)
    bad: TeacherInfo = first.model_copy(update={"model_id": "other", "tokenizer_hash": "tokX"})
    with pytest.raises(ValueError, match="tokenizer_hash") as err:
        check_joinable(tmp_path, first, bad)
    assert "other" in str(err.value)
    with pytest.raises(ValueError, match="top_k"):
        check_joinable(tmp_path, first, fake_teacher(top_k=8).model_copy(update={"model_id": "o"}))


def test_run_history_sums_the_cost_of_every_priced_run() -> None:
    first = fake_teacher()
    manifest = None
    for run, cost in (("r1", 0.25), ("r2", None), ("r3", 0.5)):
        stats = run_history(
            manifest,
            first,
            run,
            {"written": 2, "prompts": 9},
            {} if cost is None else {"cost_usd": cost},
        )
        manifest = Manifest(schema_version=1, kind="generated", dataset_id="d", stats=stats)
    assert manifest is not None
    assert [r["run_id"] for r in manifest.stats["runs"]] == ["r1", "r2", "r3"]
    assert "prompts" not in manifest.stats["runs"][0]  # a property of the file, not the run
    assert manifest.stats["cost_usd"] == 0.75
    # A mid-run rewrite replaces the run's entry rather than adding one.
    again = run_history(manifest, first, "r3", {"written": 5}, {"cost_usd": 1.0})
    assert [r["written"] for r in again["runs"]] == [2, 2, 5] and again["cost_usd"] == 1.25
