"""Near-duplicate throughput and quality on synthetic documents with injected near-duplicates.

    python -m bench.near_dedup [--docs 100000] [--seed 0] [--repeat 3]

Documents are ~50 words drawn from a Zipf-like vocabulary of 20,000 words; ~10 % of them
are copies of another document with 5-15 % of their words replaced. Every engine gets the
same texts, the same shingles (the reference `shingles`, word 1-grams), 128 permutations,
LSH with 32 bands of 4 rows (rensa needs a divisor of 128), J >= 0.5, and the same policy
(visit in order, drop a row whose best LSH candidate among the kept rows reaches the
threshold). Every timing is end to end, texts in, decisions out, in this one process:

  datasketch  the naive baseline: `MinHash.update(s)` per shingle, then `MinHashLSH`;
  distill     the `near_dedup` step (`NearDedup.decide_columns`), max_shingle_share off;
  reference   the step as datasketch makes it (`MinHash.update_batch` per text, then
              `MinHashLSH`; tests/curate/dedup/minhash_reference.py, its former
              "datasketch" engine);
  rensa       `RMinHash.update(shingles)` + `RMinHashLSH` (Rust), if installed (`bench` extra).

On a shared machine one timing is noisy, so the numpy engine and rensa are timed
`--repeat` times, alternating, and the best of each is reported.

Recall = injected copies dropped as a duplicate of their own group / copies injected;
precision = such drops / all drops. Every figure is also given as a ratio to datasketch.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from datasketch import MinHash, MinHashLSH
from tests.curate.dedup.minhash_reference import reference_decide_columns, shingles

from distill.curate.dedup import NearDedup

FAST = ("distill near_dedup, engine=numpy", "rensa RMinHash + RMinHashLSH")
NUM_PERM, THRESHOLD, SHINGLE, NGRAM, BANDS, ROWS = 128, 0.5, "word", 1, 32, 4


def make_docs(n: int, seed: int) -> tuple[list[str], list[int]]:
    """(texts, group) where group[i] is the index of the original a copy was made from."""
    rng = np.random.default_rng(seed)
    vocab = np.array([f"w{i}" for i in range(20_000)])
    weights = 1.0 / np.arange(1, len(vocab) + 1) ** 0.8
    weights /= weights.sum()
    n_copies = n // 10
    originals = n - n_copies
    words = [
        list(rng.choice(vocab, int(rng.integers(40, 61)), p=weights)) for _ in range(originals)
    ]
    group = list(range(originals))
    for _ in range(n_copies):
        source = int(rng.integers(originals))
        copy = list(words[source])
        edits = max(1, round(len(copy) * rng.uniform(0.05, 0.15)))
        for at in rng.choice(len(copy), edits, replace=False):
            copy[at] = vocab[rng.integers(len(vocab))]
        words.append(copy)
        group.append(source)
    order = rng.permutation(n)  # copies anywhere, sometimes before their original
    return [" ".join(words[i]) for i in order], [group[i] for i in order]


def dedup_datasketch(texts: list[str]) -> list[int | None]:
    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, params=(BANDS, ROWS))

    def sketch_of(text: str) -> MinHash:
        sketch = MinHash(num_perm=NUM_PERM, seed=1)
        for item in shingles(text, SHINGLE, NGRAM):
            sketch.update(item.encode())
        return sketch

    return keep_first(texts, sketch_of, lsh)


def dedup_rensa(texts: list[str]) -> list[int | None]:
    from rensa import RMinHash, RMinHashLSH

    lsh = RMinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM, num_bands=BANDS)

    def sketch_of(text: str) -> RMinHash:
        sketch = RMinHash(num_perm=NUM_PERM, seed=1)
        sketch.update(list(shingles(text, SHINGLE, NGRAM)))
        return sketch

    return keep_first(texts, sketch_of, lsh)


def keep_first(texts: list[str], sketch_of: Callable[[str], Any], lsh: Any) -> list[int | None]:
    """The same greedy pass for both libraries: a text is a duplicate of the most similar
    earlier kept text at or above THRESHOLD, else it is kept and indexed."""
    kept: dict[int, Any] = {}
    out: list[int | None] = []
    for index, text in enumerate(texts):
        sketch = sketch_of(text)
        best, best_j = None, -1.0
        for other in lsh.query(sketch):
            j = sketch.jaccard(kept[other])
            if j > best_j:
                best, best_j = other, j
        if best is not None and best_j >= THRESHOLD:
            out.append(best)
            continue
        kept[index] = sketch
        lsh.insert(index, sketch)
        out.append(None)
    return out


def dedup_step(reference: bool = False) -> Callable[[list[str]], list[int | None]]:
    def run(texts: list[str]) -> list[int | None]:
        step = NearDedup(
            field="response",
            shingle=SHINGLE,
            ngram=NGRAM,
            threshold=THRESHOLD,
            num_perm=NUM_PERM,
            bands=BANDS,
            rows=ROWS,
            max_shingle_share=None,
        )
        n = len(texts)
        columns = {
            "record_id": list(range(n)),
            "prompt_id": list(range(n)),
            "messages": [None] * n,
            "response_text": texts,
            "reference": [None] * n,
        }
        if reference:
            decisions = reference_decide_columns(step, columns)
        else:
            decisions = step.decide_columns(columns)
        return [None if d is None else d.details["duplicate_of"] for d in decisions]

    return run


def quality(found: list[int | None], group: list[int]) -> tuple[float, float]:
    injected = (len(group) - len(set(group))) or 1
    # A group of k documents can lose k - 1: the ground truth is group membership.
    drops = [(i, o) for i, o in enumerate(found) if o is not None]
    right = sum(1 for i, o in drops if group[i] == group[o])
    return right / injected, right / len(drops) if drops else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--repeat", type=int, default=3, help="timing rounds for the numpy engine and rensa"
    )
    args = parser.parse_args()
    texts, group = make_docs(args.docs, args.seed)
    print(f"machine: {platform.machine()} {platform.python_version()}; docs: {len(texts):,}")
    engines: dict[str, Callable[[list[str]], list[int | None]]] = {
        "datasketch update() per shingle": dedup_datasketch,
        "near_dedup reference (datasketch)": dedup_step(reference=True),
        "distill near_dedup, engine=numpy": dedup_step(),
    }
    try:
        import rensa  # noqa: F401

        engines["rensa RMinHash + RMinHashLSH"] = dedup_rensa
    except ImportError:
        print("rensa not installed (pip install rensa, or the `bench` extra): skipped")
    seconds = {name: float("inf") for name in engines}
    found: dict[str, list[int | None]] = {}
    for round_ in range(args.repeat):
        for name, run in engines.items():
            if round_ and name not in FAST:
                continue  # minutes per run; its rate does not decide anything
            start = time.perf_counter()
            found[name] = run(texts)
            seconds[name] = min(seconds[name], time.perf_counter() - start)
    print(f"best of {args.repeat} rounds for {', '.join(FAST)} (alternating), 1 for the rest")
    rows = [(name, len(texts) / seconds[name], *quality(found[name], group)) for name in engines]
    base_rate, base_recall, base_precision = rows[0][1:]
    header = f"{'docs/s':>9s} {'x':>6s} {'recall':>7s} {'x':>6s} {'prec.':>7s} {'x':>6s}"
    print(f"\n{'engine':40s} {header}")
    for name, rate, recall, precision in rows:
        print(
            f"{name:40s} {rate:9,.0f} {rate / base_rate:6.2f} {recall:7.4f} "
            f"{recall / base_recall:6.3f} {precision:7.4f} {precision / base_precision:6.3f}"
        )


if __name__ == "__main__":
    main()
