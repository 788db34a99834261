from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from distill.curate.base import RejectReason
from distill.curate.near_dedup import NearDedup, minhash, shingles
from distill.curate.numpy_minhash import BatchMinHashLSH, lsh_params, shingle_pairs
from distill.curate.recipe import recipe_from_dict

TEXT = (
    "The mitochondria is the powerhouse of the cell and produces most of the chemical "
    "energy needed to power the biochemical reactions of the cell."
)
EDITED = TEXT.replace("most", "much").replace("chemical", "Chemical ").upper()
OTHER = "Photosynthesis converts light energy into chemical energy stored in glucose molecules."


def _table(rows: list[tuple[str, str, str, str]], logprobs: list[float] | None = None):
    data = {
        "record_id": [r[0] for r in rows],
        "prompt_id": [r[1] for r in rows],
        "messages": [[{"role": "user", "content": r[2]}] for r in rows],
        "response_text": [r[3] for r in rows],
        "reference": [None] * len(rows),
    }
    if logprobs is not None:
        data["sampled_logprob"] = [[lp, lp] for lp in logprobs]
    return pa.table(data)


def test_shingles_ignore_case_punctuation_and_whitespace() -> None:
    assert shingles("Hello,   WORLD!", "word", 1) == {"hello", "world"}
    assert shingles("ab cd", "char", 3) == {"ab ", "b c", " cd"}
    assert shingles("hi", "char", 5) == {"hi"}  # shorter than one shingle
    assert shingles("?!", "char", 5) == set()


def test_our_sketch_is_datasketch_minhash() -> None:
    reference = MinHash(num_perm=64, seed=3)
    for item in sorted(shingles(TEXT)):
        reference.update(item.encode())
    assert minhash(shingles(TEXT), 64, 3) == reference


def test_near_duplicate_dropped_with_its_original_and_jaccard() -> None:
    table = _table([("r0", "p0", "q", TEXT), ("r1", "p1", "q", OTHER), ("r2", "p2", "q", EDITED)])
    decisions = NearDedup(field="response", threshold=0.6).decide(table)
    assert decisions[:2] == [None, None]
    drop = decisions[2]
    assert drop is not None and drop.reason is RejectReason.NEAR_DUPLICATE
    assert drop.details["duplicate_of"] == "r0"
    assert 0.6 <= drop.details["jaccard"] < 1.0
    assert drop.details["field"] == "response"


def test_samples_of_one_prompt_are_not_compared_on_prompts() -> None:
    rows = [("r0", "p0", TEXT, "A"), ("r1", "p0", TEXT, "B"), ("r2", "p1", EDITED, "C")]
    decisions = NearDedup(field="prompt", threshold=0.6).decide(_table(rows))
    assert decisions[0] is None and decisions[1] is None
    assert decisions[2] is not None and decisions[2].details["duplicate_of"] in {"r0", "r1"}


@pytest.mark.parametrize(("keep", "survivor"), [("first", 0), ("most_confident", 1)])
def test_keep_policy_picks_the_survivor(keep: str, survivor: int) -> None:
    table = _table([("r0", "p0", "q", TEXT), ("r1", "p1", "q", EDITED)], logprobs=[-2.0, -0.1])
    decisions = NearDedup(field="response", threshold=0.6, keep=keep).decide(table)
    assert decisions[survivor] is None
    assert decisions[1 - survivor] is not None


def test_keep_correct_prefers_the_row_that_passes_the_mcq_check() -> None:
    table = pa.table(
        {
            "record_id": ["r0", "r1"],
            "prompt_id": ["p0", "p1"],
            "messages": [[{"role": "user", "content": "q"}]] * 2,
            "response_text": [TEXT + " Answer: C", TEXT + " Answer: B"],
            "reference": ["B", "B"],
        }
    )
    decisions = NearDedup(field="response", threshold=0.6, keep="correct").decide(table)
    assert decisions[1] is None
    assert decisions[0] is not None and decisions[0].details["duplicate_of"] == "r1"


def test_chains_keep_the_far_end() -> None:
    # a ~ b and b ~ c but a !~ c: b goes, c stays (compared with kept rows only).
    words = [f"w{i}" for i in range(30)]
    a = " ".join(words)
    b = " ".join(words[:24] + [f"x{i}" for i in range(6)])
    c = " ".join(words[:18] + [f"x{i}" for i in range(12)])
    table = _table([("a", "p0", "q", a), ("b", "p1", "q", b), ("c", "p2", "q", c)])
    step = NearDedup(field="response", shingle="word", ngram=1, threshold=0.6, num_perm=256)
    decisions = step.decide(table)
    assert decisions[0] is None and decisions[1] is not None and decisions[2] is None


def test_recipe_validates_near_dedup_keys() -> None:
    recipe = recipe_from_dict({"steps": [{"name": "near_dedup", "keep": "correct"}]})
    assert recipe.steps[0] == NearDedup(keep="correct")
    with pytest.raises(ValueError, match="treshold"):
        recipe_from_dict({"steps": [{"name": "near_dedup", "treshold": 0.5}]})
    with pytest.raises(ValueError, match="keep"):
        recipe_from_dict({"steps": [{"name": "near_dedup", "keep": "best"}]})


@pytest.mark.parametrize(("kind", "n"), [("word", 1), ("word", 3), ("char", 3), ("char", 5)])
def test_vectorised_shingles_are_the_reference_sets(kind: str, n: int) -> None:
    texts = [TEXT, EDITED, OTHER, "Hello,   WORLD!", "hi", "?!", "", "Straße ÉCOLE école", "a\x00b"]
    for batch in (texts, [t for t in texts if t.isascii()]):  # regex and ASCII fast path
        text_of, hashes = shingle_pairs(batch, kind, n)
        assert np.all(np.diff(text_of) >= 0)
        counts = np.bincount(text_of, minlength=len(batch)).tolist()
        assert counts == [len(shingles(t.replace("\x00", " "), kind, n)) for t in batch]
        assert np.all(hashes < 2**32)


def test_vectorised_jaccard_estimates_and_candidates() -> None:
    rng = np.random.default_rng(0)
    base = [f"t{i}" for i in rng.choice(10_000, 200, replace=False)]
    texts, true = [" ".join(base)], [1.0]
    for overlap in (0.0, 0.3, 0.45, 0.6, 0.75, 0.9):
        keep = int(overlap * 200)
        other = base[:keep] + [f"u{i}" for i in range(200 - keep)]
        texts.append(" ".join(other))
        true.append(keep / (400 - keep))
    lsh = BatchMinHashLSH(num_perm=256, threshold=0.5, seed=1)
    text_of, hashes = shingle_pairs(texts, "word", 1)
    signatures = lsh.signatures(text_of, hashes, len(texts))
    estimated = (signatures[0] == signatures).mean(axis=1)
    # Standard error of a 256-permutation estimate is <= 0.5 / 16 = 0.031.
    assert np.abs(estimated - np.array(true)).max() < 0.1, (estimated, true)
    pairs, jaccards = lsh.similar_pairs(signatures, np.ones(len(texts), dtype=bool))
    found = {tuple(p) for p in pairs.tolist() if 0 in p}
    assert found == {(0, i) for i in range(1, len(texts)) if estimated[i] >= 0.5}
    assert np.all(jaccards >= 0.5)


def test_banding_parameters_are_datasketch_s() -> None:
    from datasketch.lsh import _optimal_param

    for threshold in (0.3, 0.5, 0.7, 0.9):
        for num_perm in (64, 128):
            assert lsh_params(threshold, num_perm) == _optimal_param(threshold, num_perm, 0.5, 0.5)


def test_engines_make_the_same_decisions() -> None:
    table = _table([("r0", "p0", "q", TEXT), ("r1", "p1", "q", OTHER), ("r2", "p2", "q", EDITED)])
    numpy_engine = NearDedup(field="response", threshold=0.6).decide(table)
    datasketch_engine = NearDedup(field="response", threshold=0.6, engine="datasketch")
    assert [d is None for d in numpy_engine] == [d is None for d in datasketch_engine.decide(table)]
    with pytest.raises(ValueError, match="engine"):
        recipe_from_dict({"steps": [{"name": "near_dedup", "engine": "rust"}]})
