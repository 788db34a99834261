"""The held-out split as row numbers (`split_rows`): the old split on small sets, and a cap on
rows and tokens that keeps whole prompts and the hash order."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pyarrow as pa
import pytest

from distill.schemas import records_to_table
from distill.train import split_heldout, split_summary
from distill.train.heldout import _unit_hash, response_lengths, split_rows
from distill.train.rows import open_rows
from tests.factories import make_record


def old_split_heldout(
    table: pa.Table, fraction: float = 0.1, min_rows: int = 4, seed: int = 0
) -> tuple[pa.Table, pa.Table]:
    """`split_heldout` as it was before the split became row numbers: the reference."""
    n = table.num_rows
    if fraction == 0.0 or n == 0:
        return table, table.slice(0, 0)
    prompt_ids = table.column("prompt_id").to_pylist()
    sizes = Counter(prompt_ids)
    hashes = {p: _unit_hash(p, seed) for p in sizes}
    held_prompts = {p for p, h in hashes.items() if h < fraction}
    held_rows = sum(sizes[p] for p in held_prompts)
    want = min(max(min_rows, held_rows), n // 2)
    for prompt in sorted(hashes, key=lambda p: (hashes[p], p)):
        if held_rows >= want:
            break
        if prompt not in held_prompts and held_rows + sizes[prompt] <= n // 2:
            held_prompts.add(prompt)
            held_rows += sizes[prompt]
    held = np.array([p in held_prompts for p in prompt_ids], dtype=bool)
    order = np.arange(n)
    return table.take(order[~held]), table.take(order[held])


def uneven_prompts(n_prompts: int, seed: int = 0) -> pa.Table:
    """Prompts with 1 to 4 samples of 1 to 6 tokens, shuffled so a prompt's rows are apart."""
    rng = np.random.default_rng(seed)
    records = [
        make_record(row=i, sample_index=j, n_tokens=int(rng.integers(1, 7)))
        for i in range(n_prompts)
        for j in range(int(rng.integers(1, 5)))
    ]
    table = records_to_table(records)
    return table.take(rng.permutation(table.num_rows))


def mapped(table: pa.Table, path, chunk_rows: int) -> pa.Table:
    """`table` as the runner sees it: an Arrow file of several chunks, memory-mapped."""
    with pa.ipc.new_file(str(path), table.schema) as writer:
        for batch in table.to_batches(max_chunksize=chunk_rows):
            writer.write_batch(batch)
    return open_rows(path)


def record_ids(table: pa.Table, rows: np.ndarray | None = None) -> list[str]:
    ids = table.column("record_id").to_pylist()
    return ids if rows is None else [ids[i] for i in rows]


@pytest.mark.parametrize(
    ("fraction", "min_rows", "seed"),
    [(0.1, 4, 0), (0.25, 4, 1), (0.3, 0, 5), (0.001, 4, 0), (0.001, 100, 2), (0.5, 4, 3)],
)
def test_split_on_a_mapped_table_equals_the_old_split(tmp_path, fraction, min_rows, seed):
    table = uneven_prompts(60, seed)
    old_train, old_held = old_split_heldout(table, fraction, min_rows, seed)
    rows = mapped(table, tmp_path / "rows.arrow", chunk_rows=7)
    split = split_rows(
        rows.column("prompt_id"), response_lengths(rows),
        fraction=fraction, min_rows=min_rows, seed=seed,
    )  # fmt: skip
    # The same rows in the same order on each side, so training sees the same items.
    assert record_ids(rows, split.train_rows) == record_ids(old_train)
    assert record_ids(rows, split.heldout_rows) == record_ids(old_held)
    assert split.summary() == split_summary(old_train, old_held)
    assert split.cap.prompts_over_cap == 0
    new_train, new_held = split_heldout(table, fraction, min_rows, seed)
    assert record_ids(new_train) == record_ids(old_train)
    assert record_ids(new_held) == record_ids(old_held)


def chosen_in_hash_order(table: pa.Table, fraction: float, seed: int) -> list[str]:
    """The uncapped held-out prompts, smallest (hash, id) first: computed independently."""
    held = set(old_split_heldout(table, fraction, 4, seed)[1].column("prompt_id").to_pylist())
    return sorted(held, key=lambda p: (_unit_hash(p, seed), p))


@pytest.mark.parametrize(("max_rows", "max_tokens"), [(10, None), (None, 25), (12, 30), (1, 1)])
def test_the_cap_bounds_rows_and_tokens_with_whole_prompts_in_hash_order(max_rows, max_tokens):
    table = uneven_prompts(200)
    prompt_ids = table.column("prompt_id").to_pylist()
    tokens = response_lengths(table)
    split = split_rows(
        table.column("prompt_id"), tokens, fraction=0.3, seed=7,
        max_rows=max_rows, max_tokens=max_tokens,
    )  # fmt: skip
    # Expected: the chosen prompts in hash order, each taken if it still fits both caps.
    rows_of = Counter(prompt_ids)
    tokens_of: Counter[str] = Counter()
    for prompt, n in zip(prompt_ids, tokens.tolist(), strict=True):
        tokens_of[prompt] += n
    chosen = chosen_in_hash_order(table, 0.3, 7)
    expected, used_rows, used_tokens = [], 0, 0
    for prompt in chosen:
        rows, toks = used_rows + rows_of[prompt], used_tokens + tokens_of[prompt]
        if rows <= (max_rows or 10**9) and toks <= (max_tokens or 10**9):
            expected.append(prompt)
            used_rows, used_tokens = rows, toks
    expected = expected or chosen[:1]  # none fits: the first prompt alone
    assert split.heldout_prompt_ids == sorted(expected)
    assert split.cap.prompts_over_cap == len(chosen) - len(expected) > 0
    held_prompts = [prompt_ids[i] for i in split.heldout_rows]
    assert int(tokens[split.heldout_rows].sum()) == split.heldout_tokens
    if len(expected) > 1 or (rows_of[expected[0]] <= (max_rows or 10**9)):
        assert split.heldout_rows.size <= (max_rows or 10**9)
    if len(expected) > 1 or (tokens_of[expected[0]] <= (max_tokens or 10**9)):
        assert split.heldout_tokens <= (max_tokens or 10**9)
    # whole prompts only, and none of them among the train rows
    assert Counter(held_prompts) == {p: rows_of[p] for p in expected}
    assert not {prompt_ids[i] for i in split.train_rows} & set(expected)
    # every row is on exactly one side: the prompts past the cap train
    assert sorted([*split.train_rows, *split.heldout_rows]) == list(range(table.num_rows))
    assert split.train_tokens + split.heldout_tokens == int(tokens.sum())


def test_the_cap_is_stable_under_row_order_and_keeps_small_sets_whole():
    table = uneven_prompts(200)
    caps = {"fraction": 0.3, "seed": 7, "max_rows": 20, "max_tokens": 60}
    one = split_rows(table.column("prompt_id"), response_lengths(table), **caps)
    backwards = table.take(np.arange(table.num_rows)[::-1])
    other = split_rows(backwards.column("prompt_id"), response_lengths(backwards), **caps)
    assert one.heldout_prompt_ids == other.heldout_prompt_ids
    # The defaults of TrainConfig leave a demo-sized held-out set as it was.
    uncapped = split_rows(table.column("prompt_id"), response_lengths(table), fraction=0.3)
    capped = split_rows(
        table.column("prompt_id"), response_lengths(table), fraction=0.3,
        max_rows=512, max_tokens=65536,
    )  # fmt: skip
    assert capped.heldout_prompt_ids == uncapped.heldout_prompt_ids
    assert capped.cap.prompts_over_cap == 0


def test_split_rows_refuses_missing_prompt_ids_and_mismatched_counts():
    with pytest.raises(ValueError, match="prompt_id: 1 rows have none"):
        split_rows(pa.array(["a", None]), np.array([1, 1]), fraction=0.5)
    with pytest.raises(ValueError, match="2 prompt ids but 3 token counts"):
        split_rows(pa.array(["a", "b"]), np.array([1, 1, 1]), fraction=0.5)
    with pytest.raises(ValueError, match="fraction"):
        split_rows(pa.array(["a"]), np.array([1]), fraction=1.0)


def test_cli_train_takes_the_heldout_caps(real_vocab_dataset, tiny_student, tmp_path):
    import json

    from typer.testing import CliRunner

    from distill.cli import app

    run = CliRunner().invoke(
        app,
        [
            "train", str(real_vocab_dataset), "--out", str(tmp_path), "--mode", "kd",
            "--student", str(tiny_student), "--max-steps", "1", "--batch-size", "2",
            "--heldout-max-rows", "3", "--heldout-max-tokens", "100000",
        ],
    )  # fmt: skip
    assert run.exit_code == 0, run.output
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["config"]["heldout_max_rows"] == 3
    assert metrics["config"]["heldout_max_tokens"] == 100000
    assert metrics["heldout_cap"]["max_rows"] == 3
    assert 0 < metrics["heldout_rows"] <= 3


def test_a_prompt_too_long_for_the_cap_is_skipped_and_never_empties_the_set():
    # 40 prompts x 8 samples of 9,000 tokens: every prompt alone passes a 65,536-token cap.
    prompts = pa.array([f"p{i}" for i in range(40) for _ in range(8)])
    long = split_rows(prompts, np.full(320, 9000), fraction=0.3, max_tokens=65536)
    assert len(long.heldout_prompt_ids) == 1 and long.heldout_rows.size == 8
    assert long.heldout_prompt_ids[0] not in {prompts[i].as_py() for i in long.train_rows}
    # A prompt over the cap is skipped wherever it falls; the shorter ones still fit.
    rows = np.arange(320)
    lengths = np.where((rows >= 8) & (rows < 16), 100_000, 10)  # p1: first in hash order
    mixed = split_rows(prompts, lengths, fraction=0.3, max_tokens=65536)
    assert "p1" not in mixed.heldout_prompt_ids
    assert mixed.heldout_rows.size == 8 * len(mixed.heldout_prompt_ids) >= 8
