"""The held-out split is deterministic and the metrics count every response token."""

from __future__ import annotations

import math

from transformers import AutoModelForCausalLM

from distill.schemas import records_to_table
from distill.store import read_table
from distill.train import heldout_metrics, split_heldout
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
