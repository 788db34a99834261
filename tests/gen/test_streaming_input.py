"""gen and score read their input streamed: every prompt format a row or a batch at a time
(memory flat in the file's size), errors still naming file and line, longest-first only
within a window, and resume state as compact hashes that skip exactly the done ids."""

from __future__ import annotations

import csv
import json
import random
import tracemalloc
from itertools import islice
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import distill.gen.id_hashes as id_hashes
from distill.gen.id_hashes import KeyMap, KeySet, keys_of
from distill.gen.prompts import PromptError, iter_prompts, load_prompts
from distill.gen.resume import existing_record_ids
from distill.gen.run_output import longest_first
from distill.gen.runner import generate_dataset
from distill.store import load_manifest, read_table
from tests.gen.test_run import FakeScorer

FORMATS = ["jsonl", "parquet", "csv", "hf"]


def prompt_text(i: int) -> str:
    return f"Prompt number {i}: " + "tell me about colours. " * 20  # ~480 characters


def write_prompts(folder: Path, fmt: str, texts: list[str | None]) -> Path:
    """`texts` as a prompt file of format `fmt` (None: a row with no prompt)."""
    rows = [{"prompt": text, "domain": "d"} for text in texts]
    if fmt == "jsonl":
        path = folder / "p.jsonl"
        path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    elif fmt == "csv":
        path = folder / "p.csv"
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, ["prompt", "domain"])
            writer.writeheader()
            writer.writerows({**row, "prompt": row["prompt"] or ""} for row in rows)
    elif fmt == "parquet":
        path = folder / "p.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path, row_group_size=500)
    else:
        from datasets import Dataset

        path = folder / "ds"
        Dataset.from_list(rows).save_to_disk(str(path))
    return path


def first_line(fmt: str) -> int:
    return 2 if fmt == "csv" else 1  # a CSV's first row is on line 2, after its header


def peak_while_reading(path: Path) -> tuple[int, int]:
    """(rows read, peak bytes Python allocated while streaming them)."""
    tracemalloc.start()
    try:
        rows = sum(1 for _ in iter_prompts(path))
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_each_format_streams_with_memory_flat_in_the_file_size(
    fmt: str, tmp_path: Path, monkeypatch
) -> None:
    """4x the rows, about the same peak: a reader holding the file (rows of ~500 characters,
    1 KB as Python objects) would grow by ~9 MB from the small file to the large one."""
    monkeypatch.setattr(id_hashes, "PENDING_MAX", 256)  # hashes, not Python objects, hold state
    peaks = {}
    for rows in (3000, 12000):
        folder = tmp_path / str(rows)
        folder.mkdir()
        path = write_prompts(folder, fmt, [prompt_text(i) for i in range(rows)])
        read, peak = peak_while_reading(path)
        assert read == rows
        peaks[rows] = peak
    assert peaks[12000] < 1.3 * peaks[3000] + 512 * 1024, peaks


@pytest.mark.parametrize("fmt", FORMATS)
def test_streamed_rows_equal_the_file_and_errors_name_their_line(fmt: str, tmp_path: Path) -> None:
    texts: list[str | None] = [prompt_text(i) for i in range(2500)]
    texts[2100] = None  # a row with no prompt, past the first read batch
    path = write_prompts(tmp_path, fmt, texts)
    stream = iter_prompts(path)
    got = list(islice(stream, 2100))  # everything before the bad row comes out first
    assert [row.messages[-1]["content"] for row in got] == texts[:2100]
    assert [row.source_row for row in got] == [first_line(fmt) + i for i in range(2100)]
    assert {row.domain for row in got} == {"d"}
    bad_line = first_line(fmt) + 2100
    with pytest.raises(PromptError) as err:
        next(stream)
    assert str(err.value).startswith(f"{path}:{bad_line}: field 'prompt': ")
    skipped = load_prompts(path, skip_invalid=True)
    assert [(bad.source_row, bad.field) for bad in skipped.invalid] == [(bad_line, "prompt")]
    assert len(skipped.rows) == 2499


def test_a_repeated_prompt_gets_the_same_ids_as_before_across_spills(
    tmp_path: Path, monkeypatch
) -> None:
    """Prompt ids are (text, occurrence) hashes; the occurrence counts now live in a `KeyMap`
    that spills to sorted arrays: ids must not depend on when it spills."""
    texts = [f"p{i % 37}" for i in range(400)]
    path = write_prompts(tmp_path, "jsonl", texts)
    reference = [row.prompt_id for row in load_prompts(path).rows]
    monkeypatch.setattr(id_hashes, "PENDING_MAX", 5)
    assert [row.prompt_id for row in load_prompts(path).rows] == reference
    assert len(set(reference)) == 400  # each repeat distinct


def test_key_map_matches_a_dict_through_spills_and_merges() -> None:
    rng = random.Random(0)
    keys = [f"k{i}" for i in range(3000)]
    compact, reference = KeyMap(pending_max=64), {}
    for _ in range(20000):
        key = rng.choice(keys)
        if rng.random() < 0.5:
            value = rng.randrange(1 << 40)
            compact.put(key, value)
            reference[key] = value
        else:
            assert compact.get(key) == reference.get(key)
    assert len(compact) == len(reference)
    assert len(compact.runs) <= 12  # merged: O(log n) runs, not one per spill


def test_key_set_membership_and_duplicates() -> None:
    done = [f"id-{i}" for i in range(0, 2000, 2)]
    keys = KeySet(*keys_of(done))
    assert all(f"id-{i}" in keys for i in range(0, 2000, 2))
    assert not any(f"id-{i}" in keys for i in range(1, 2000, 2))
    assert keys.duplicates() == 0
    assert KeySet.concat([keys_of(done), keys_of(done[:7])]).duplicates() == 7


def test_longest_first_sorts_only_within_its_window() -> None:
    taken = []

    def source():
        for length in [1, 5, 3, 9, 2, 8, 7, 4]:
            taken.append(length)
            yield type("Item", (), {"length": length})()

    stream = longest_first(source(), 3)
    assert next(stream).length == 5 and taken == [1, 5, 3]  # one window read, not all
    assert [item.length for item in stream] == [3, 1, 9, 8, 2, 7, 4]


def test_resume_with_hashed_state_sends_exactly_the_missing_rows(tmp_path: Path) -> None:
    first = write_prompts(tmp_path, "jsonl", [f"question {'?' * i}" for i in range(6)])
    out = tmp_path / "out"
    generate_dataset(first, out, teacher=FakeScorer(), top_k=3, batch_size=4, progress=False)
    done_ids = set(read_table(out).column("record_id").to_pylist())
    keys = existing_record_ids(out, load_manifest(out))
    assert len(keys) == 6 and all(record_id in keys for record_id in done_ids)

    more = tmp_path / "more"
    more.mkdir()
    texts = [f"question {'?' * i}" for i in range(10)]  # the same six, and four new
    again = FakeScorer()
    result = generate_dataset(
        write_prompts(more, "jsonl", texts), out, teacher=again, top_k=3, progress=False
    )
    assert (result.records_skipped_existing, result.records_written) == (6, 4)
    sent = sorted(len(prompt) for batch in again.batches for prompt, _ in batch)
    assert sent == sorted(len(text) for text in texts[6:])  # the new four, nothing else
    rows = read_table(out).to_pylist()
    assert sorted(row["messages"][-1]["content"] for row in rows) == sorted(texts)
    assert load_manifest(out).counts["skipped_existing"] == 6
