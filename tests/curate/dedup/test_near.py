from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from datasketch import MinHash

from distill.curate.base import RejectReason
from distill.curate.dedup.minhash import BatchMinHashLSH, lsh_params
from distill.curate.dedup.near import NearDedup
from distill.curate.dedup.shingles import shingle_pairs
from distill.curate.recipe import recipe_from_dict
from tests.curate.dedup.minhash_reference import minhash, reference_decide, shingles

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
    # 64 bands of 4 make every pair at J ~ 0.67 a candidate (1 - (1 - 0.6^4)^64 > 0.999),
    # so only the policy decides; a ~ c (J = 0.43) fails the Jaccard check.
    step = NearDedup(
        field="response", shingle="word", ngram=1, threshold=0.6, num_perm=256, bands=64, rows=4
    )
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
        text_of, hashes = shingle_pairs(batch, kind, n, distinct=True)
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
            assert lsh_params(threshold, num_perm, 0.1, 0.9) == _optimal_param(
                threshold, num_perm, 0.1, 0.9
            )


def test_bands_and_rows_are_settable_and_checked() -> None:
    assert (NearDedup().lsh().bands, NearDedup().lsh().rows) == lsh_params(0.45, 256, 0.1, 0.9)
    assert (NearDedup(bands=32).lsh().bands, NearDedup(bands=32).lsh().rows) == (32, 8)
    assert NearDedup(num_perm=128, rows=4).lsh().bands == 32
    with pytest.raises(ValueError, match="bands x rows"):
        NearDedup(num_perm=128, bands=40, rows=4)
    with pytest.raises(ValueError, match="bands x rows"):
        recipe_from_dict({"steps": [{"name": "near_dedup", "num_perm": 64, "bands": 65}]})


def test_shingle_hashes_do_not_depend_on_position_or_neighbours() -> None:
    # A one-word text is the single shingle of that word: its hash must be the one the
    # word gets anywhere inside a longer text (in a batch of other texts).
    words = ["alpha", "Beta", "gamma_1", "δέλτα", "straße", "x"]
    alone = shingle_pairs(words, "word", 1)[1]
    inside = shingle_pairs(["zz " + " ... ".join(reversed(words)) + "!", "q"], "word", 1)
    assert set(inside[1][inside[0] == 0].tolist()) - set(alone.tolist()) == {
        int(shingle_pairs(["zz"], "word", 1)[1][0])
    }
    # 20,000 distinct words: 32-bit hashes collide ~0.05 times (birthday bound).
    many = [f"w{i}" for i in range(20_000)]
    assert len(np.unique(shingle_pairs([" ".join(many)], "word", 1)[1])) >= 19_998


@pytest.mark.parametrize(("kind", "n"), [("char", 5), ("word", 3)])
def test_estimated_jaccard_matches_exact_jaccard_of_reference_shingles(kind, n) -> None:
    """Estimates from the vectorised hashes against Jaccard computed on `shingles` sets."""
    rng = np.random.default_rng(1)
    vocab = [f"m{i}" for i in range(300)] + ["Été", "naïve", "ÇA", "straße"]
    base = [vocab[i] for i in rng.integers(len(vocab), size=120)]
    texts = [" ".join(base)]
    for share in (0.95, 0.85, 0.7, 0.5, 0.2):
        words = list(base)
        for at in rng.choice(len(words), int((1 - share) * len(words)), replace=False):
            words[at] = vocab[rng.integers(len(vocab))].upper()
        texts.append(",  ".join(words))
    exact = [
        len(shingles(texts[0], kind, n) & shingles(t, kind, n))
        / len(shingles(texts[0], kind, n) | shingles(t, kind, n))
        for t in texts
    ]
    lsh = BatchMinHashLSH(num_perm=512, threshold=0.5, seed=2)
    text_of, hashes = shingle_pairs(texts, kind, n)
    signatures = lsh.signatures(text_of, hashes, len(texts))
    estimated = (signatures[0] == signatures).mean(axis=1)
    # Standard error of a 512-permutation estimate is <= 0.5 / sqrt(512) = 0.022.
    assert np.abs(estimated - np.array(exact)).max() < 0.08, (estimated, exact)


def test_candidates_are_exactly_the_pairs_sharing_a_band() -> None:
    rng = np.random.default_rng(3)
    signatures = rng.integers(0, 4, size=(400, 16), dtype=np.uint32)  # small values: collisions
    usable = rng.random(400) < 0.8
    lsh = BatchMinHashLSH(num_perm=16, threshold=0.5, seed=1, bands=4, rows=4)
    expected = set()
    rows = np.flatnonzero(usable).tolist()
    for band in range(4):
        cells = signatures[:, band * 4 : band * 4 + 4]
        for x, i in enumerate(rows):
            for j in rows[x + 1 :]:
                if np.array_equal(cells[i], cells[j]):
                    expected.add((i, j))
    found = lsh.candidate_pairs(signatures, usable)
    assert len(expected) > 50
    assert sorted(map(tuple, found.tolist())) == sorted(expected)


def test_engines_make_the_same_decisions() -> None:
    table = _table([("r0", "p0", "q", TEXT), ("r1", "p1", "q", OTHER), ("r2", "p2", "q", EDITED)])
    numpy_engine = NearDedup(field="response", threshold=0.6).decide(table)
    datasketch_engine = reference_decide(NearDedup(field="response", threshold=0.6), table)
    assert [d is None for d in numpy_engine] == [d is None for d in datasketch_engine]
    with pytest.raises(ValueError, match="engine"):
        recipe_from_dict({"steps": [{"name": "near_dedup", "engine": "rust"}]})


def test_engine_datasketch_is_still_accepted_and_runs_the_numpy_engine() -> None:
    table = _table([("r0", "p0", "q", TEXT), ("r1", "p1", "q", OTHER), ("r2", "p2", "q", EDITED)])
    with pytest.warns(UserWarning, match="numpy engine"):
        recipe = recipe_from_dict({"steps": [{"name": "near_dedup", "engine": "datasketch"}]})
    step = recipe.steps[0]
    assert step.params()["engine"] == "datasketch"  # recorded in the manifest as written
    numpy_step = NearDedup(field="response", threshold=0.6)
    with pytest.warns(UserWarning):
        old = NearDedup(field="response", threshold=0.6, engine="datasketch")
    assert old.decide(table) == numpy_step.decide(table)
