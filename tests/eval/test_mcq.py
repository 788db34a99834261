"""`distill eval` on fake models whose behaviour is known: every figure against a hand count."""

from __future__ import annotations

import json

import pytest

from distill.eval.mcq import EvalConfig, evaluate_mcq
from distill.tasks.mcq_variants import REWORDINGS
from tests.eval.fakes import (
    QUESTIONS,
    always_a,
    fake_loader,
    fake_models,
    fooled_by_wording,
    knows,
    mcq_file,
    mute_on,
)

# Mute on questions 1 (2 + 2, STEM), 5 (ocean, social sciences), 6 (Torah, humanities).
MUTE = ("2 + 2", "ocean", "torah")


def run(tmp_path, behaviours, **config):
    load = fake_loader(behaviours)
    models = fake_models(behaviours, tmp_path)
    out = tmp_path / "eval.json"
    result = evaluate_mcq(models, mcq_file(tmp_path), EvalConfig(**config), out, load=load)
    assert json.loads(out.read_text()) == result.model_dump(mode="json")
    return {m.label: m for m in result.models}, result


def test_rollup_to_the_four_categories_matches_a_hand_count(tmp_path):
    scores, result = run(tmp_path, {"mute": mute_on(MUTE)})
    assert result.categories == ["STEM", "humanities", "social sciences", "other"]
    assert [item.category for item in result.items] == [
        "STEM", "STEM", "STEM", "social sciences", "social sciences", "humanities", "other",
        "other",
    ]  # fmt: skip
    mute = scores["mute"]
    # by hand: STEM 2 of 3 (2 + 2 mute), humanities 0 of 1, social sciences 1 of 2, other 2/2
    counts = {name: (g.accuracy.count, g.accuracy.total) for name, g in mute.per_category.items()}
    assert counts == {
        "STEM": (2, 3),
        "humanities": (0, 1),
        "social sciences": (1, 2),
        "other": (2, 2),
    }
    subjects = {name: (g.accuracy.count, g.accuracy.total) for name, g in mute.per_subject.items()}
    assert subjects == {
        "conceptual physics": (1, 1), "elementary mathematics": (1, 2),
        "high school geography": (1, 2), "human aging": (1, 1), "management": (1, 1),
        "world religions": (0, 1),
    }  # fmt: skip
    assert mute.per_category["STEM"].accuracy.value == pytest.approx(2 / 3)
    assert (mute.overall.accuracy.count, mute.overall.accuracy.total) == (5, 8)


def test_a_users_category_file_is_used_and_unknown_subjects_stay_unmapped(tmp_path):
    mapping = tmp_path / "mine.yaml"
    mapping.write_text("elementary_mathematics: numbers\nHigh School Geography: places\n")
    scores, result = run(tmp_path, {"knows": knows}, categories=mapping)
    assert result.categories == ["numbers", "places", "unmapped"]
    assert result.categories_source == str(mapping)
    totals = {name: g.accuracy.total for name, g in scores["knows"].per_category.items()}
    assert totals == {"numbers": 2, "places": 2, "unmapped": 4}
    assert result.unmapped_subjects == [
        "conceptual physics", "human aging", "management", "world religions",
    ]  # fmt: skip


def test_extraction_rate_is_reported_apart_from_accuracy(tmp_path):
    scores, _ = run(tmp_path, {"mute": mute_on(MUTE), "always_a": always_a})
    mute, letter_a = scores["mute"], scores["always_a"]
    assert [i for i, a in enumerate(mute.answers) if a is None] == [0, 4, 5]
    assert (mute.overall.extraction.count, mute.overall.extraction.total) == (5, 8)
    assert mute.per_category["humanities"].extraction.value == 0.0
    # always "A": every answer extracted, right only where the reference is A
    expected_right = sum(ref == "A" for _, _, ref, _ in QUESTIONS)
    assert expected_right == 2
    assert letter_a.overall.extraction.value == 1.0
    assert letter_a.overall.accuracy.count == expected_right


def test_consistency_catches_a_model_that_answers_by_position(tmp_path):
    scores, result = run(tmp_path, {"knows": knows, "always_a": always_a})
    assert scores["knows"].permutation_consistency.value == 1.0
    assert scores["knows"].rewording_consistency.value == 1.0
    # "A" names the same option after the permutation only where option A did not move
    fixed = sum(item.order[0] == 0 for item in result.items)
    assert 0 < fixed < len(QUESTIONS)  # the seed's permutations tell the two apart
    assert scores["always_a"].permutation_consistency.count == fixed
    assert scores["always_a"].rewording_consistency.value == 1.0  # position ignores wording


def test_consistency_catches_a_model_fooled_by_rewording(tmp_path):
    scores, result = run(tmp_path, {"fooled": fooled_by_wording}, rewordings_per_question=4)
    fooled = scores["fooled"]
    assert fooled.permutation_consistency.value == 1.0
    assert all(set(item.rewordings) == set(REWORDINGS) for item in result.items)
    # it says "D" to every rewording: it keeps its choice only where D is right
    keeps = [ref == "D" for _, _, ref, _ in QUESTIONS]
    assert fooled.rewording_consistency.count == sum(keeps) == 2
    for name in REWORDINGS:
        assert fooled.rewording_by_template[name].count == 2
    assert fooled.reworded_answers[0] == dict.fromkeys(REWORDINGS, "D")


def test_the_rewordings_change_only_the_stem(tmp_path):
    from distill.tasks.mcq_variants import mcq_variants
    from distill.tasks.mmlu import read_mcq_lines

    path = mcq_file(tmp_path)
    questions = mcq_variants(list(read_mcq_lines(path)), str(path), 0, 4)
    first = questions[0]
    assert first.reworded["lowercase"].endswith("Question: what is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6")
    assert "Question: What is 2 + 2\nA. 3" in first.reworded["no_punctuation"]
    assert (
        "Question: Which of these is the right answer? What is 2 + 2?"
        in (first.reworded["which_of_these"])
    )
    assert len({first.prompt, *first.reworded.values()}) == 5


def test_no_questions_is_an_error(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(ValueError, match="no questions"):
        evaluate_mcq(fake_models({"k": knows}, tmp_path), empty, load=fake_loader({"k": knows}))
