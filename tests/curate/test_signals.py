from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from distill.codec import TopK
from distill.curate import curate_dataset
from distill.curate.base import RejectReason
from distill.curate.confidence import ConfidenceFilter
from distill.curate.recipe import recipe_from_dict
from distill.curate.signals import (
    answer_logprob,
    auroc,
    compute_signals,
    is_wrong,
    mean_entropy,
    min_logprob,
    self_consistency,
)
from tests.factories import make_record, write_fake_dataset

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
# SmolLM2's tokenizer: "A" -> 49, " A" -> 330, and so on (AutoTokenizer.encode).
SMOLLM2_LETTERS = {"A": [49, 330], "B": [50, 389], "C": [51, 340], "D": [52, 422]}


def test_auroc_matches_pairwise_definition() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40).astype(float)  # many ties
    labels = rng.random(40) < 0.4
    pairs = list(itertools.product(scores[labels], scores[~labels]))
    expected = np.mean([1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs])
    assert auroc(scores, labels) == pytest.approx(expected)
    assert auroc(np.array([1.0, 2.0]), np.array([False, True])) == 1.0
    assert np.isnan(auroc(np.array([1.0, 2.0]), np.array([True, True])))


def _topk(logprobs: list[list[float]], tails: list[float]) -> TopK:
    """One row per token list given: flat TopK with ids 0..k-1 (ids don't matter here)."""
    k = np.array([len(t) for t in logprobs])
    flat = np.array([lp for t in logprobs for lp in t], np.float32)
    return TopK(
        np.zeros(flat.size, np.int64), flat, k, np.array(tails, np.float32), np.ones(len(k), int)
    )


def test_entropy_of_a_uniform_top_k_and_a_certain_token() -> None:
    k = 4
    uniform, certain = [np.log(1 / k)] * k, [0.0, -80.0, -80.0, -80.0]
    assert mean_entropy(_topk([uniform, certain], [0.0, 0.0])) == pytest.approx(
        [np.log(k), 0.0], abs=1e-5
    )
    # The tail counts as one more outcome: half the mass in the tail adds 0.5·log 2.
    assert mean_entropy(_topk([[np.log(0.5)]], [0.5])) == pytest.approx([np.log(2)], abs=1e-6)
    # A -inf entry (an unused slot of sampled targets) has p = 0 and adds nothing, not NaN.
    with_inf = _topk([[np.log(0.5), np.log(0.5), -np.inf]], [0.0])
    assert mean_entropy(with_inf) == pytest.approx([np.log(2)], abs=1e-6)


def test_signals_read_sliced_arrow_columns_correctly() -> None:
    table = pq.read_table(FIXTURE)
    ids = {t: letter for letter, toks in SMOLLM2_LETTERS.items() for t in toks}
    whole = compute_signals(table, ids)
    part = compute_signals(table.slice(37, 50), ids)
    del part["self_consistency"]  # a group property: the slice cuts prompt groups
    for name, values in part.items():
        np.testing.assert_allclose(values, whole[name][37:87], equal_nan=True)
    lengths = [len(x) for x in table.column("sampled_logprob").to_pylist()[37:87]]
    assert min(lengths) >= 1
    expected = [min(x) for x in table.column("sampled_logprob").to_pylist()[37:87]]
    np.testing.assert_allclose(min_logprob(table.slice(37, 50)["sampled_logprob"]), expected)


def test_answer_logprob_is_taken_at_the_last_answer_letter() -> None:
    token_ids = pa.chunked_array([pa.array([[7, 330, 9, 389, 2], [7, 8]], pa.list_(pa.int32()))])
    logprobs = pa.chunked_array(
        [pa.array([[-1.0, -0.5, -2.0, -0.25, -0.1], [-1.0, -1.0]], pa.list_(pa.float32()))]
    )
    ids = {330: "A", 389: "B"}
    out = answer_logprob(["A or... Answer: B", "no idea"], token_ids, logprobs, ids)
    assert out[0] == pytest.approx(-0.25)
    assert np.isnan(out[1])


def test_self_consistency_is_the_share_of_agreeing_samples() -> None:
    out = self_consistency(["p", "p", "p", "p", "q"], ["A", "A", "B", None, "C"])
    np.testing.assert_allclose(out[:4], [0.5, 0.5, 0.25, 0.0])
    assert np.isnan(out[4])  # one sample: nothing to agree with


def test_is_wrong_grades_letters_only() -> None:
    out = is_wrong(["Answer: B", "Answer: C", "hmm", "x"], ["B", "B", "B", None])
    np.testing.assert_array_equal(out[:3], [0.0, 1.0, 1.0])
    assert np.isnan(out[3])


def test_confidence_step_thresholds_and_reports_auroc() -> None:
    table = pq.read_table(FIXTURE)
    step = ConfidenceFilter(signal="self_consistency", min=0.5, letter_tokens=SMOLLM2_LETTERS)
    decisions = step.decide(table)
    values = compute_signals(table)["self_consistency"]
    for value, drop in zip(values, decisions, strict=True):
        assert (drop is not None) == (value < 0.5)
        if drop is not None:
            assert drop.reason is RejectReason.LOW_CONFIDENCE
            assert drop.details == {"signal": "self_consistency", "value": value, "min": 0.5}
    aurocs = step.summarize(table, decisions)["stats"]["signal_auroc"]
    assert set(aurocs) == {"mean_entropy", "min_logprob", "self_consistency", "answer_logprob"}
    assert all(0.0 <= a["auroc"] <= 1.0 and a["n"] > 200 for a in aurocs.values())
    json.dumps(aurocs)


def test_confidence_recipe_errors_name_the_key() -> None:
    with pytest.raises(ValueError, match="minn"):
        recipe_from_dict({"steps": [{"name": "confidence", "minn": 1}]})
    with pytest.raises(ValidationError, match="letter_tokens"):
        ConfidenceFilter(signal="answer_logprob")


def test_signal_auroc_lands_in_the_curated_manifest(tmp_path: Path) -> None:
    records = [
        make_record(row=r, sample_index=s, response=f"Answer: {'B' if s < 2 else 'C'}")
        for r in range(3)
        for s in range(3)
    ]
    # make_record's prompt_id comes from row, so each row's samples share one prompt.
    write_fake_dataset(tmp_path / "gen", records)
    recipe = recipe_from_dict({"steps": [{"name": "confidence", "max": 100}]})
    result = curate_dataset(tmp_path / "gen", tmp_path / "out", recipe)
    aurocs = result.kept_manifest.stats["signal_auroc"]
    # Two of three samples agree on the right answer: self-consistency separates perfectly.
    assert aurocs["self_consistency"]["auroc"] == 1.0
