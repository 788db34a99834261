"""Prompt sources besides one file: a Hub-style snapshot folder, a glob, and (Python API) a
`pyarrow.Table` or `datasets.Dataset`. Each reads like the same rows in one Parquet file,
a batch at a time."""

from __future__ import annotations

from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.gen import prompt_files
from distill.gen.prompt_sources import arrow_batches, parquet_parts
from distill.gen.prompts import PromptError, detect_format, load_prompts
from distill.gen.runner import generate_dataset
from distill.gen.score import score_dataset
from distill.schemas import SamplingParams
from distill.store import load_manifest, read_table

ROWS = [
    {"prompt": f"What is {i} + {i}?", "response": str(2 * i), "domain": "math" if i % 2 else "x"}
    for i in range(7)
]


def _texts(source, fmt=None) -> list[tuple[str, int, str | None]]:
    batch = load_prompts(source, fmt)
    return [(r.messages[-1]["content"], r.source_row, r.domain) for r in batch.rows]


@pytest.fixture
def single(tmp_path: Path) -> Path:
    path = tmp_path / "one.parquet"
    pq.write_table(pa.Table.from_pylist(ROWS), path)
    return path


@pytest.fixture
def snapshot(tmp_path: Path) -> Path:
    """A folder as `huggingface-cli download --repo-type dataset` leaves it."""
    root = tmp_path / "snapshot"
    (root / "data").mkdir(parents=True)
    (root / "README.md").write_text("---\nconfigs:\n- config_name: default\n---\n")
    for part, rows in enumerate((ROWS[:4], ROWS[4:])):
        name = f"train-{part:05d}-of-00002.parquet"
        pq.write_table(pa.Table.from_pylist(rows), root / "data" / name)
    return root


def test_a_hub_snapshot_folder_reads_like_one_parquet_file(single: Path, snapshot: Path) -> None:
    assert detect_format(snapshot) == "parquet"
    want = _texts(single)
    assert _texts(snapshot) == want and len(want) == len(ROWS)
    assert [row for _, row, _ in want] == list(range(1, len(ROWS) + 1))  # across the parts
    assert load_prompts(snapshot).rows[0].source_file == str(snapshot)


def test_a_glob_reads_like_one_parquet_file(single: Path, snapshot: Path) -> None:
    pattern = f"{snapshot}/data/*.parquet"
    assert detect_format(pattern) == "parquet"
    assert _texts(pattern) == _texts(single)
    assert _texts(f"{snapshot}/data/train-00001-*.parquet") == [
        (text, row - 4, domain) for text, row, domain in _texts(single)[4:]
    ]
    with pytest.raises(FileNotFoundError, match="no file matches"):
        load_prompts(f"{snapshot}/data/nothing-*.parquet")


def test_several_splits_are_refused_naming_them(snapshot: Path) -> None:
    pq.write_table(
        pa.Table.from_pylist(ROWS[:1]), snapshot / "data" / "test-00000-of-00001.parquet"
    )
    with pytest.raises(PromptError, match=r"several splits \(test, train\)"):
        load_prompts(snapshot)
    assert len(_texts(f"{snapshot}/data/train-*.parquet")) == len(ROWS)


def test_tables_in_memory_read_like_the_file(single: Path) -> None:
    want = _texts(single)
    table = pa.Table.from_pylist(ROWS)
    assert detect_format(table) == "arrow"
    assert _texts(table) == want
    assert _texts(datasets.Dataset.from_list(ROWS)) == want
    assert load_prompts(table).rows[0].source_file == "<pyarrow.Table>"
    with pytest.raises(TypeError, match=r"a path, a pyarrow\.Table or a datasets\.Dataset"):
        load_prompts([{"prompt": "a list"}], "arrow")  # type: ignore[arg-type]


def test_reading_stays_batched(snapshot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = pa.Table.from_pylist([{"prompt": f"p{i}"} for i in range(2500)])
    assert [b.num_rows for b in arrow_batches(big, 1024)] == [1024, 1024, 452]
    assert [b.num_rows for b in arrow_batches(datasets.Dataset(big), 1024)] == [1024, 1024, 452]
    opened: list[str] = []
    real = prompt_files._parquet_rows
    monkeypatch.setattr(
        prompt_files, "_parquet_rows", lambda path: (opened.append(path.name), real(path))[1]
    )
    rows = prompt_files.read_rows(snapshot, "parquet")
    next(rows)
    assert opened == ["train-00000-of-00002.parquet"]  # the second part is not read yet
    assert parquet_parts(snapshot) is not None and len(parquet_parts(snapshot)) == 2


def test_generate_and_score_take_a_table_and_a_snapshot(
    snapshot: Path, embedded_teacher, tmp_path: Path
) -> None:
    sampling = SamplingParams(max_new_tokens=2)
    common = {"teacher": embedded_teacher, "top_k": 3, "progress": False}
    table = pa.Table.from_pylist(ROWS)
    by_table = generate_dataset(table, tmp_path / "t", sampling=sampling, **common)
    by_folder = generate_dataset(snapshot, tmp_path / "f", sampling=sampling, **common)
    assert by_table.records_written == by_folder.records_written == len(ROWS)
    ids = [read_table(tmp_path / d).column("record_id").to_pylist() for d in ("t", "f")]
    assert ids[0] == ids[1]  # same prompts, same ids: the source's name is not in them
    manifest = load_manifest(tmp_path / "t")
    assert manifest.params["prompts"] == "<pyarrow.Table>"
    (prompts,) = [i for i in manifest.licenses if i.source == "prompts"]
    assert prompts.name == "<pyarrow.Table>" and prompts.sha256 and len(prompts.sha256) == 64
    scored = score_dataset(datasets.Dataset(table), tmp_path / "s", **common)
    assert scored.records_written == len(ROWS)
    texts = read_table(tmp_path / "s").column("response_text").to_pylist()
    assert sorted(texts) == sorted(row["response"] for row in ROWS)
