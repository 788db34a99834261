from __future__ import annotations

import pyarrow as pa
import pytest

from distill.curate.base import Drop, RejectReason
from distill.tasks.mcq import McqVerify, extract_choice, normalize_reference


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("Answer: B", "B"),
        ("answer: C", "C"),
        ("ANSWER: D", "D"),
        ("Two plus two is four. Answer: B", "B"),
        ("The answer is (B)", "B"),
        ("the answer is (b).", "B"),
        ("The correct answer is B.", "B"),
        ("The correct answer is: C, because the others are wrong.", "C"),
        ("So the final answer is **D**.", "D"),
        ("**Answer:** C", "C"),
        ("**Answer: A**", "A"),
        ("Answer: A because the car is faster.", "A"),
        ("The correct option is D", "D"),
        ("Answer - B", "B"),
        ("Answer: [C]", "C"),
        (r"Thus \boxed{C}", "C"),
        ("Answer: B) 4", "B"),
        ("I think it's **B**.", "B"),
        ("B. 14 m/s", "B"),  # SmolLM2 copies the option line
        ("(C) Instinct", "C"),
        ("D. m ÷ 4 = 12", "D"),
        ("**(C)**", "C"),
        ("**B) 4** is the right one", "B"),
        ("Let me think.\nFour is B.\n\nB", "B"),
        ("Reasoning...\n(D)", "D"),
        ("Reasoning...\n**C**\n", "C"),
        ("So it is D", "D"),
        ("So I pick B)", "B"),
        ("Thinking step by step: C.", "C"),
    ],
)
def test_extracts_real_formats(text: str, letter: str) -> None:
    found = extract_choice(text)
    assert found is not None, text
    assert found.letter == letter


@pytest.mark.parametrize(
    "text",
    [
        "A car is faster than a bike.",
        "Answer: A car is faster than a bike.",
        "The answer is a function of the input.",
        "Both options look plausible to me.",
        "A. 3\nB. 4\nC. 5\nD. 6\nLet me think about this problem",
        "I am not sure.",
        "Option (A) seems off, and so does option (B); let me reconsider",
        "",
        "Answer: E",
        "Answer: Because it is so",
    ],
)
def test_no_letter_in_ordinary_text(text: str) -> None:
    assert extract_choice(text) is None


def test_last_explicit_marker_wins() -> None:
    text = "Answer: B. Wait, that is wrong. The answer is not B.\nAnswer: C"
    assert extract_choice(text) == ("C", "marker")


def test_marker_beats_bold_and_trailing() -> None:
    assert extract_choice("**A** looks good but Answer: D\n\nB") == ("D", "marker")
    assert extract_choice("**A** looks good\nB") == ("A", "bold")


def test_custom_letters() -> None:
    assert extract_choice("Answer: E", letters="ABCDE") == ("E", "marker")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [("B", "B"), (" b ", "B"), ("(C)", "C"), ("D.", "D"), ("4", None), ("AB", None), (None, None)],
)
def test_normalize_reference(reference: str | None, expected: str | None) -> None:
    assert normalize_reference(reference) == expected


def test_filter_outcomes() -> None:
    step = McqVerify()
    assert step.filter({"response_text": "Answer: B", "reference": "B"}) is None
    assert step.filter({"response_text": "Answer: C", "reference": "B"}) == Drop(
        RejectReason.WRONG_ANSWER, {"extracted": "C", "reference": "B", "rule": "marker"}
    )
    assert step.filter({"response_text": "no idea", "reference": "B"}) == Drop(
        RejectReason.NO_ANSWER_FOUND, {"reference": "B"}
    )
    # Not multiple choice: passes through whatever the response says.
    assert step.filter({"response_text": "no idea", "reference": None}) is None
    assert step.filter({"response_text": "Answer: C", "reference": "42"}) is None


def test_accuracy_by_domain_counts_only_graded_rows() -> None:
    table = pa.table(
        {
            "response_text": ["Answer: B", "Answer: C", "?", "Answer: A", "free text"],
            "reference": ["B", "B", "A", "A", None],
            "domain": ["math", "math", "math", None, "chat"],
        }
    )
    step = McqVerify()
    summary = step.summarize(table, step.decide(table))["accuracy_by_domain"]
    assert summary == {
        "math": {"graded": 3, "correct": 1, "accuracy": pytest.approx(1 / 3)},
        "unknown": {"graded": 1, "correct": 1, "accuracy": 1.0},
    }


def test_letters_validated() -> None:
    with pytest.raises(ValueError, match="capital letters"):
        McqVerify(letters="abcd")
