"""The keep policy: which row of a group of similar rows survives. Used by the pairwise
dedup steps (`near_dedup`, `semantic_dedup`, through `distill.curate.dedup.pairwise`);
`select_teacher` shares its multiple-choice check (`rows_passing_mcq`).

Which member of a group survives is the `keep` policy:

- `first`: input order, so a re-run keeps the same rows;
- `most_confident`: the highest mean `sampled_logprob`;
- `correct`: a row that passes the multiple-choice check first (rows without a letter
  reference count as passing), then input order.

Rows are visited in that priority order and a row is dropped when it matches a row already
*kept*; comparing with kept rows only means a chain A~B~C with A≁C drops B but keeps C,
instead of collapsing the whole chain into one survivor. Every dropped row names the kept
record it duplicates and the similarity (estimated Jaccard, or cosine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distill.tasks.mcq import extract_choice, normalize_reference


def priority_order(
    keep: str, columns: dict[str, list[Any]], confidence: np.ndarray | None
) -> list[int]:
    """Row indices in the order the `keep` policy visits them (first visited survives)."""
    order = range(len(columns["record_id"]))
    if keep == "most_confident":
        assert confidence is not None
        return sorted(order, key=lambda i: (-confidence[i], i))
    if keep == "correct":
        ok = columns["passes_mcq"] if "passes_mcq" in columns else rows_passing_mcq(columns)
        return sorted(order, key=lambda i: (not ok[i], i))
    return list(order)


def keep_pass(
    order: list[int],
    text_index: list[int],
    usable: np.ndarray,
    pairs: np.ndarray,
    scores: np.ndarray,
    groups: list[Any] | None = None,
) -> list[tuple[int, float] | None]:
    """Visit rows in `order`; drop a row whose best similar *kept* row scores a pair.

    Rows index texts (`text_index`); `pairs` of texts with their `scores` are the similar
    ones (a text is similar to itself with score 1). Rows of one group (`groups`, e.g.
    the prompt id) are never compared. Returns, per row, (kept row it duplicates, score)
    or None. Texts not `usable` (no shingle, nothing to embed) are kept untouched.
    """
    texts = np.asarray(text_index, dtype=np.int64)
    # A row whose text is unique and in no similar pair is kept without a look; skipping
    # those rows (most of them) keeps this Python loop small.
    involved = np.bincount(texts, minlength=len(usable)) > 1
    involved[np.asarray(pairs, dtype=np.int64).ravel()] = True
    involved &= usable
    rows = np.asarray(order, dtype=np.int64)
    similar: dict[int, list[tuple[int, float]]] = {}
    for (i, j), score in zip(pairs.tolist(), scores.tolist(), strict=True):
        similar.setdefault(i, [(i, 1.0)]).append((j, score))
        similar.setdefault(j, [(j, 1.0)]).append((i, score))
    kept: dict[int, list[int]] = {}  # kept rows, per text
    found: list[tuple[int, float] | None] = [None] * len(text_index)
    for index in rows[involved[texts[rows]]].tolist():
        text = text_index[index]
        best, best_score = None, -1.0
        for other_text, score in similar.get(text, [(text, 1.0)]):
            if score <= best_score:
                continue
            for other in kept.get(other_text, ()):
                if groups is None or groups[other] != groups[index]:
                    best, best_score = other, score
                    break
        if best is None:
            kept.setdefault(text, []).append(index)
        else:
            found[index] = (best, best_score)
    return found


def rows_passing_mcq(columns: dict[str, list[Any]]) -> list[bool]:
    """`passes_mcq` of each row, from its `response_text` and `reference` columns."""
    return [
        passes_mcq(response, reference)
        for response, reference in zip(columns["response_text"], columns["reference"], strict=True)
    ]


def passes_mcq(response: str, reference: str | None) -> bool:
    """True when the extracted letter equals the reference, or there is no letter reference."""
    letter = normalize_reference(reference)
    if letter is None:
        return True
    extracted = extract_choice(response)
    return extracted is not None and extracted.letter == letter
