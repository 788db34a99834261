import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.gen.prompts import FieldMapping, PromptError, load_prompts

MMLU_ROW = {
    "question": "What is 2 + 3?",
    "answer_a": "4",
    "answer_b": "5",
    "answer_c": "6",
    "answer_d": "7",
    "correct_answer": "B",
    "topic": "elementary mathematics",
}
HEADER_ROW = {k: k for k in MMLU_ROW} | {"correct_answer": "answer", "topic": "x"}


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_jsonl_rows_become_user_messages_with_domain_and_reference(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            json.dumps({"prompt": "hi", "domain": "chat"}),
            json.dumps({"prompt": "2+2?", "reference": "4"}),
        ],
    )
    batch = load_prompts(path)
    assert [r.messages for r in batch.rows] == [
        [{"role": "user", "content": "hi"}],
        [{"role": "user", "content": "2+2?"}],
    ]
    assert [r.domain for r in batch.rows] == ["chat", None]
    assert [r.reference for r in batch.rows] == [None, "4"]
    assert [r.source_row for r in batch.rows] == [1, 2]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ('{"prompt": "ok"', "<line>", "not a JSON object"),
        ('{"text": "no prompt field"}', "prompt", "missing"),
        ('{"prompt": "   "}', "prompt", "empty prompt"),
    ],
)
def test_bad_rows_name_file_line_and_field(
    tmp_path: Path, line: str, field: str, problem: str
) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [json.dumps({"prompt": "fine"}), line])
    with pytest.raises(PromptError) as err:
        load_prompts(path)
    assert str(err.value) == f"{path}:2: field '{field}': {problem}"


def test_skip_invalid_keeps_going_and_returns_bad_rows_with_reasons(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "p.jsonl",
        [
            json.dumps({"prompt": "a"}),
            "{broken",
            json.dumps({"prompt": ""}),
            json.dumps({"prompt": "b"}),
        ],
    )
    batch = load_prompts(path, skip_invalid=True)
    assert [r.messages[0]["content"] for r in batch.rows] == ["a", "b"]
    assert [(i.source_row, i.field, i.reason) for i in batch.invalid] == [
        (2, "<line>", "not a JSON object"),
        (3, "prompt", "empty prompt"),
    ]
    assert batch.invalid[0].raw == "{broken"


def test_prompt_ids_stable_across_reordering_but_distinct_for_repeats(tmp_path: Path) -> None:
    a, b = json.dumps({"prompt": "a"}), json.dumps({"prompt": "b"})
    first = load_prompts(write_jsonl(tmp_path / "1.jsonl", [a, b, a]))
    second = load_prompts(write_jsonl(tmp_path / "2.jsonl", [b, a, a]))
    ids1 = {r.messages[0]["content"]: r.prompt_id for r in first.rows[:2]}
    ids2 = {r.messages[0]["content"]: r.prompt_id for r in second.rows[:2]}
    assert ids1 == ids2
    assert first.rows[0].prompt_id != first.rows[2].prompt_id  # the repeat of "a"


def test_mmlu_format_skips_header_rows_and_builds_the_prompt(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [json.dumps(HEADER_ROW), json.dumps(MMLU_ROW)])
    batch = load_prompts(path, "mmlu")
    assert batch.skipped_headers == 1
    (row,) = batch.rows
    assert row.domain == "elementary mathematics" and row.reference == "B"
    text = row.messages[0]["content"]
    assert "Question: What is 2 + 3?" in text and "\nB. 5\n" in text and "Answer: X" in text


def test_mmlu_bad_letter_is_named(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "m.jsonl", [json.dumps(MMLU_ROW | {"correct_answer": "E"})])
    with pytest.raises(PromptError, match=r"m.jsonl:1: field 'correct_answer'"):
        load_prompts(path, "mmlu")


def test_csv_and_parquet_with_field_mapping_and_system_prompt(tmp_path: Path) -> None:
    csv_path = tmp_path / "p.csv"
    csv_path.write_text("q,topic\nwhat?,geo\n")
    mapping = FieldMapping(prompt="q", domain="topic")
    (row,) = load_prompts(csv_path, mapping=mapping, system_prompt="Be brief.").rows
    assert row.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "what?"},
    ]
    assert row.domain == "geo" and row.source_row == 2
    pq_path = tmp_path / "p.parquet"
    pq.write_table(pa.table({"q": ["x", "y"], "topic": ["a", "b"]}), pq_path)
    rows = load_prompts(pq_path, mapping=mapping, limit=1).rows
    assert [r.messages[-1]["content"] for r in rows] == ["x"]


def test_messages_field_and_hf_dataset_dir(tmp_path: Path) -> None:
    from datasets import Dataset

    chat = [{"role": "user", "content": "hello"}]
    Dataset.from_list([{"chat": chat, "id": "q1"}]).save_to_disk(str(tmp_path / "ds"))
    (row,) = load_prompts(tmp_path / "ds", mapping=FieldMapping(messages="chat", id="id")).rows
    assert row.messages == chat and row.prompt_id == "q1"
