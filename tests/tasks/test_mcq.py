"""Multiple-choice questions: letter extraction, references, the MMLU prompt and its permutation."""

from __future__ import annotations

import random

import pytest

from distill.input_rows import PromptError
from distill.tasks.mcq import (
    LETTERS,
    MMLU_INSTRUCTION,
    chosen_letter,
    extract_choice,
    mmlu_prompt,
    normalize_reference,
    permute_options,
)


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


def test_chosen_letter_is_the_extracted_letter_or_none() -> None:
    assert chosen_letter("I think so. Answer: (c)") == "C"
    assert chosen_letter("no idea at all") is None
    assert chosen_letter("Answer: E", "ABCDE") == "E"


def test_mmlu_prompt_lists_the_options_under_the_question() -> None:
    row = {
        "question": "2 + 2?",
        "answer_a": "3",
        "answer_b": 4,
        "answer_c": "5",
        "answer_d": "6",
        "correct_answer": " b ",
        "topic": "math",
    }
    text, domain, reference = mmlu_prompt(row, "q.jsonl", 3)
    expected = MMLU_INSTRUCTION + "\n\nQuestion: 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6"
    assert (text, domain, reference) == (expected, "math", "B")
    with pytest.raises(PromptError, match=r"q\.jsonl:3: field 'answer_c': an object, not a string"):
        mmlu_prompt(row | {"answer_c": {"x": 1}}, "q.jsonl", 3)
    with pytest.raises(PromptError, match=r"q\.jsonl:3: field 'topic': missing or empty"):
        mmlu_prompt(row | {"topic": " "}, "q.jsonl", 3)


def test_permutation_moves_the_reference_with_its_content():
    row = {f"answer_{c}": f"opt-{c}" for c in "abcd"} | {"correct_answer": "C", "question": "q"}
    rng = random.Random(0)
    for _ in range(20):
        new, order = permute_options(row, rng)
        assert order != [0, 1, 2, 3]
        ref = LETTERS.index(new["correct_answer"])
        assert new[f"answer_{new['correct_answer'].lower()}"] == "opt-c"
        assert order[ref] == 2
