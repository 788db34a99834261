"""Chat exports: the prompt turns plus the assistant turn, read back by `datasets` and pyarrow."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.export import ExportConfig, chat_rows, export_dataset
from distill.schemas import records_to_table
from distill.store import read_table
from tests.factories import make_record


def expected_chats(dataset: Path) -> list[dict]:
    """Built row by row from the source, independently of the vectorised export."""
    return [
        {
            "messages": row["messages"] + [{"role": "assistant", "content": row["response_text"]}],
            "record_id": row["record_id"],
            "prompt_id": row["prompt_id"],
        }
        for row in read_table(dataset).to_pylist()
    ]


def test_chat_rows_of_a_sliced_batch_with_several_turns():
    records = [make_record(row=i, response=f"answer {i}") for i in range(5)]
    records[1].messages.insert(0, records[1].messages[0].model_copy(update={"role": "system"}))
    records[3].messages.append(records[3].messages[0].model_copy(update={"content": "again?"}))
    table = records_to_table(records).slice(1, 3)  # offsets that do not start at 0
    rows = chat_rows(table).to_pylist()
    assert [len(r["messages"]) for r in rows] == [3, 2, 3]
    assert rows[0]["messages"][0]["role"] == "system"
    assert rows[2]["messages"][1]["content"] == "again?"
    assert [r["messages"][-1] for r in rows] == [
        {"role": "assistant", "content": f"answer {i}"} for i in (1, 2, 3)
    ]
    assert [r["record_id"] for r in rows] == [records[i].record_id for i in (1, 2, 3)]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_chat_export_reads_back_with_datasets_and_pyarrow(
    source: Path, tmp_path: Path, suffix: str
):
    out = tmp_path / f"chat{suffix}"
    result = export_dataset(source, ExportConfig(format="chat", out=out, batch_rows=7))
    want = expected_chats(source)
    assert result.rows == len(want) == 40
    loader = "json" if suffix == ".jsonl" else "parquet"
    loaded = datasets.load_dataset(loader, data_files=str(out), split="train")
    assert loaded.column_names == ["messages", "record_id", "prompt_id"]
    assert loaded.to_list() == want
    if suffix == ".jsonl":
        assert [json.loads(line) for line in out.read_text().splitlines()] == want
    else:
        assert pq.read_table(out).to_pylist() == want


def test_as_overrides_the_extension(plain_dataset: Path, tmp_path: Path):
    out = tmp_path / "chat.data"
    export_dataset(plain_dataset, ExportConfig(format="chat", out=out, file_format="parquet"))
    assert pq.read_table(out).num_rows == 40
    assert isinstance(pq.read_table(out).column("messages").type, pa.ListType)


def test_trl_reads_the_chat_rows_as_conversations(
    plain_dataset: Path, tmp_path: Path, teacher_dir: Path
):
    """TRL's SFT preprocessing on exported rows, with the teacher's tokenizer: each row is a
    conversation, and its rendered prompt is the very prompt the teacher was given."""
    from transformers import AutoTokenizer
    from trl.data_utils import is_conversational, maybe_apply_chat_template

    out = tmp_path / "chat.jsonl"
    export_dataset(plain_dataset, ExportConfig(format="chat", out=out))
    tokenizer = AutoTokenizer.from_pretrained(teacher_dir)
    rows = datasets.load_dataset("json", data_files=str(out), split="train").to_list()
    for row, record in zip(rows[:5], read_table(plain_dataset).to_pylist(), strict=False):
        assert is_conversational(row)
        text = maybe_apply_chat_template(row, tokenizer)["text"]
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        prompt = record["prompt_token_ids"]
        assert ids[: len(prompt)] == prompt
        assert record["response_text"] in text[len(tokenizer.decode(prompt)) :]
