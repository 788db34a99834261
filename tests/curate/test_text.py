from __future__ import annotations

from distill.curate.text import last_user_message, normalize_text, row_text


def test_normalize_text() -> None:
    assert normalize_text("  Hello\n\tWORLD  ") == "hello world"
    assert normalize_text("Straße") == normalize_text("STRASSE")  # casefold, not lower


def test_last_user_message() -> None:
    messages = [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply"},
        {"role": "user", "content": "second"},
    ]
    assert last_user_message(messages) == "second"
    assert last_user_message([{"role": "system", "content": "x"}]) == ""


def test_row_text_is_the_prompt_the_response_or_both() -> None:
    messages = [{"role": "user", "content": "Q?"}, {"role": "assistant", "content": "A"}]
    assert row_text("prompt", messages, "B") == "Q?"
    assert row_text("response", messages, "B") == "B"
    assert row_text("both", messages, "B") == "Q?\nB"
    assert row_text("both", None, "B") == "\nB"
