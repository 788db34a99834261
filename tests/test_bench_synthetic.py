"""The scale benchmark's synthetic data (bench/synthetic.py) and gen-input stage
(bench/prompt_stream.py), built tiny: valid datasets, plausible top-k, near-copies present."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from bench.prompt_stream import prepare, read_and_check
from bench.synthetic import SyntheticSpec, build_dataset, mmlu_questions

from distill.audit.verify import verify_dataset
from distill.codec import LOGPROB_BOUND, LOGPROB_RANGE, decode_topk
from distill.curate.dedup import NearDedup
from distill.store import load_manifest, read_table, shard_paths

TOKENS = 20_000  # ~155 rows: enough for a 5 % share of near-copies to show


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.lower()))


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synthetic")
    out = {}
    for codec in ("plain", "packed"):
        spec = SyntheticSpec(tokens=TOKENS, codec=codec, tokenizer="none", batch_rows=64)
        out[codec] = root / codec
        build_dataset(out[codec], spec)
    return out


@pytest.mark.parametrize("codec", ["plain", "packed"])
def test_builds_a_dataset_that_verifies_and_reads_back(built: dict[str, Path], codec: str):
    assert verify_dataset(built[codec]).ok
    manifest = load_manifest(built[codec])
    table = read_table(built[codec])
    assert manifest.codec == codec and table.num_rows == manifest.counts["rows"] > 100
    lengths = np.array([len(t) for t in table.column("token_ids").to_pylist()])
    assert lengths.sum() == TOKENS == manifest.counts["response_tokens"]
    assert lengths.max() <= 160 and np.median(lengths) == pytest.approx(128, abs=12)
    topk = decode_topk(table)
    assert topk.uniform_k == 20 and topk.ids.max() < 49152
    ids, logprobs, _ = topk.padded()
    assert (np.diff(logprobs, axis=1) <= 0).all()  # sorted descending
    assert (np.diff(np.sort(ids, axis=1), axis=1) > 0).all()  # distinct per position


def test_plain_rows_are_plausible_teacher_output(built: dict[str, Path]):
    table = read_table(built["plain"])
    topk = decode_topk(table)
    ids, logprobs, _ = topk.padded()
    probability = np.exp(logprobs.astype(np.float64)).sum(axis=1)
    np.testing.assert_allclose(topk.tail, 1 - probability, atol=1e-5)
    sampled = np.concatenate(table.column("token_ids").to_numpy(zero_copy_only=False))
    sampled_lp = np.concatenate(table.column("sampled_logprob").to_numpy(zero_copy_only=False))
    at = (ids == sampled[:, None]).argmax(axis=1)
    assert (ids[np.arange(len(at)), at] == sampled).all()  # the sampled token is in its top-k
    np.testing.assert_array_equal(logprobs[np.arange(len(at)), at], sampled_lp)
    assert 0.7 < (at == 0).mean() < 0.9  # mostly the best entry
    texts, references = (table.column(c).to_pylist() for c in ("response_text", "reference"))
    rows = zip(texts, references, strict=True)
    graded = [text.rsplit("\nAnswer: ", 1)[-1] == ref for text, ref in rows if "\nAnswer: " in text]
    assert 0.6 < np.mean(graded) < 0.95 and len(graded) > 0.9 * table.num_rows


def test_packed_holds_the_same_rows_as_plain(built: dict[str, Path]):
    plain, packed = read_table(built["plain"]), read_table(built["packed"])
    assert packed.column("record_id").equals(plain.column("record_id"))
    a, b = decode_topk(plain), decode_topk(packed)
    np.testing.assert_array_equal(a.ids, b.ids)
    # the codec's bound holds within 20 nats of each position's best, where nearly all are
    best = np.repeat(a.logprobs[::20], 20)
    near = a.logprobs >= best - LOGPROB_RANGE
    assert near.mean() > 0.99
    assert np.abs(a.logprobs - b.logprobs)[near].max() <= LOGPROB_BOUND + 1e-5


def test_near_copies_are_edited_copies_of_an_earlier_question(built: dict[str, Path]):
    table = read_table(built["plain"])
    mmlu = {q.text for q in mmlu_questions()[1]}
    prompts = [m[0]["content"] for m in table.column("messages").to_pylist()]
    copies = [i for i, p in enumerate(prompts) if p not in mmlu]
    assert len(copies) == load_manifest(built["plain"]).counts["near_copies"] >= 3
    for i in copies:
        best = max(
            len(_words(prompts[i]) & _words(p)) / len(_words(prompts[i]) | _words(p))
            for p in prompts[:i]
        )
        assert best > 0.6, (i, best)  # (the text itself is not an MMLU prompt)
    assert len(set(table.column("record_id").to_pylist())) == table.num_rows
    # ... and the default recipe's near-dedup finds them
    dropped = {i for i, drop in enumerate(NearDedup().decide(table)) if drop is not None}
    assert set(copies) <= dropped


def test_one_seed_gives_the_same_bytes_another_seed_other_rows(tmp_path: Path):
    spec = SyntheticSpec(tokens=2_000, tokenizer="none")
    build_dataset(tmp_path / "a", spec)
    build_dataset(tmp_path / "b", spec)
    build_dataset(tmp_path / "c", spec.model_copy(update={"seed": 1}))
    data = [[p.read_bytes() for p in shard_paths(tmp_path / d)] for d in "abc"]
    assert data[0] == data[1] != data[2]


def test_prompt_stream_finds_every_other_prompt_done(tmp_path: Path):
    prepare(tmp_path, 101)
    assert verify_dataset(tmp_path / "out").ok
    assert read_and_check(tmp_path / "prompts.jsonl", tmp_path / "out") == (101, 51)
