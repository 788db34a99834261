"""The held-out split is deterministic and the metrics count every response token."""

from __future__ import annotations

import math

import numpy as np
import pytest
from transformers import AutoModelForCausalLM

from distill.schemas import records_to_table
from distill.store import read_table
from distill.train import heldout_metrics, split_heldout, split_summary
from distill.train.heldout import _unit_hash
from tests.factories import make_record


def table_of(n):
    return records_to_table([make_record(row=i, n_tokens=2) for i in range(n)])


def test_split_is_deterministic_and_order_free():
    table = table_of(200)
    train, held = split_heldout(table, fraction=0.1, seed=0)
    assert train.num_rows + held.num_rows == 200
    assert 5 <= held.num_rows <= 40
    again = split_heldout(table, fraction=0.1, seed=0)[1]
    reversed_split = split_heldout(table.take(list(range(199, -1, -1))), fraction=0.1, seed=0)[1]
    ids = set(held.column("record_id").to_pylist())
    assert ids == set(again.column("record_id").to_pylist())
    assert ids == set(reversed_split.column("record_id").to_pylist())
    assert not ids & set(train.column("record_id").to_pylist())
    other_seed = split_heldout(table, fraction=0.1, seed=1)[1]
    assert ids != set(other_seed.column("record_id").to_pylist())


def table_of_prompts(n_prompts, samples):
    return records_to_table(
        [
            make_record(row=i, sample_index=j, n_tokens=1 + j)
            for i in range(n_prompts)
            for j in range(samples)
        ]
    )


def leaked_prompts(train, held):
    return set(train.column("prompt_id").to_pylist()) & set(held.column("prompt_id").to_pylist())


def record_id_split(table, fraction, seed=0):
    """The old split (hash of record_id), kept here to show the leak test catches it."""
    held = np.array([_unit_hash(r, seed) < fraction for r in table.column("record_id").to_pylist()])
    order = np.arange(table.num_rows)
    return table.take(order[~held]), table.take(order[held])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_prompt_on_both_sides_of_the_split(seed):
    table = table_of_prompts(60, 4)  # 4 samples per prompt, as `distill demo` makes
    train, held = split_heldout(table, fraction=0.25, seed=seed)
    assert held.num_rows > 0 and train.num_rows + held.num_rows == 240
    assert leaked_prompts(train, held) == set()
    assert held.num_rows % 4 == 0  # whole prompts only
    # The same check on the old record-id split finds the leak it was written for.
    old_train, old_held = record_id_split(table, 0.25, seed)
    assert len(leaked_prompts(old_train, old_held)) > 10


def test_split_is_by_prompt_hash_and_seeded():
    table = table_of_prompts(40, 2)
    held = split_heldout(table, fraction=0.3, min_rows=0, seed=5)[1]
    expected = {f"p{i:05d}" for i in range(40) if _unit_hash(f"p{i:05d}", 5) < 0.3}
    assert set(held.column("prompt_id").to_pylist()) == expected


def test_min_rows_tops_up_with_whole_prompts():
    table = table_of_prompts(10, 3)  # 30 rows
    train, held = split_heldout(table, fraction=0.001, min_rows=4, seed=0)
    assert held.num_rows == 6 and leaked_prompts(train, held) == set()  # 2 whole prompts
    train, held = split_heldout(table, fraction=0.001, min_rows=100, seed=0)
    assert held.num_rows == 15 and leaked_prompts(train, held) == set()  # at most half


def test_split_summary_counts_rows_tokens_and_prompts():
    table = table_of_prompts(20, 3)  # sample j has 1 + j tokens: 6 tokens per prompt
    train, held = split_heldout(table, fraction=0.3, seed=0)
    summary = split_summary(train, held)
    prompts = summary["heldout_prompt_ids"]
    assert prompts == sorted(set(held.column("prompt_id").to_pylist())) and prompts
    assert summary["heldout_rows"] == 3 * len(prompts)
    assert summary["heldout_tokens"] == 6 * len(prompts)
    assert summary["train_rows"] == 60 - 3 * len(prompts)
    assert summary["train_tokens"] == 120 - 6 * len(prompts)


def test_split_needs_prompt_ids():
    with pytest.raises(ValueError, match="prompt_id"):
        split_heldout(table_of(10).drop_columns(["prompt_id"]), fraction=0.2)


def test_split_min_rows_and_bounds():
    table = table_of(10)
    train, held = split_heldout(table, fraction=0.01, min_rows=3)
    assert held.num_rows == 3 and train.num_rows == 7
    train, held = split_heldout(table, fraction=0.01, min_rows=50)
    assert held.num_rows == 5  # never more than half
    train, held = split_heldout(table, fraction=0.0)
    assert held.num_rows == 0 and train.num_rows == 10


def test_heldout_metrics(tiny_student, real_vocab_dataset):
    model = AutoModelForCausalLM.from_pretrained(tiny_student)
    table = read_table(real_vocab_dataset)
    expected_tokens = sum(len(t) for t in table.column("token_ids").to_pylist())
    model.train()
    metrics = heldout_metrics(model, table, batch_size=3)
    assert model.training  # mode restored
    assert metrics["tokens"] == expected_tokens
    assert math.isfinite(metrics["kl"]) and metrics["kl"] >= 0
    # a random student is close to uniform over 49152 tokens
    assert abs(metrics["nll"] - math.log(49152)) < 1.0
    # batching does not change the result
    other = heldout_metrics(model, table, batch_size=20)
    assert abs(other["kl"] - metrics["kl"]) < 1e-4 and abs(other["nll"] - metrics["nll"]) < 1e-4
