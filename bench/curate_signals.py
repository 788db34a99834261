"""AUROC of each confidence signal for predicting a wrong MMLU answer, on a real dataset.

    python bench/curate_signals.py [/tmp/demo1/gen] [--tokenizer PATH]

Labels: a row is wrong when the letter `mcq.extract_choice` finds differs from the
reference, or no letter is found. Because "no answer" is both wrong and (for
self-consistency and answer_logprob) a missing or zero signal, the AUROC is printed twice:
over every graded row, and over the rows where an answer letter was found. The letter
token ids for answer_logprob come from the tokenizer (default: the embedded SmolLM2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from distill.curate.confidence import ConfidenceFilter
from distill.curate.signals import (
    compute_signals,
    extracted_letters,
    is_wrong,
    letter_token_ids,
    signal_aurocs,
)
from distill.store import load_manifest, read_table


def load_tokenizer(path: str | None):
    from transformers import AutoTokenizer

    if path is None:
        from distill.teachers.embedded import embedded_teacher_dir

        path = str(embedded_teacher_dir())
    return AutoTokenizer.from_pretrained(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", nargs="?", default="/tmp/demo1/gen", type=Path)
    parser.add_argument("--tokenizer", default=None, help="HF tokenizer path or id")
    args = parser.parse_args()

    # exactly what the confidence step reads, for the dataset's codec
    columns = ConfidenceFilter.input_columns(load_manifest(args.dataset))
    table = read_table(args.dataset, columns=columns)
    responses = table.column("response_text").to_pylist()
    letter_ids = letter_token_ids(load_tokenizer(args.tokenizer))
    signals = compute_signals(table, letter_ids)
    wrong = is_wrong(responses, table.column("reference").to_pylist())
    answered = np.array([letter is not None for letter in extracted_letters(responses)])

    graded = ~np.isnan(wrong)
    print(f"dataset: {args.dataset}  rows: {table.num_rows}  graded: {int(graded.sum())}")
    print(
        f"accuracy: {1 - np.nanmean(wrong):.3f}  "
        f"answer letter found: {answered[graded].mean():.3f}  "
        f"accuracy among answered: {1 - np.nanmean(wrong[answered]):.3f}"
    )
    all_rows = signal_aurocs(signals, wrong)
    only_answered = signal_aurocs(signals, np.where(answered, wrong, np.nan))
    print(
        f"\n{'signal':18} {'AUROC all':>9} {'n':>5} {'wrong':>5}   {'AUROC answered':>14} {'n':>5}"
    )
    for name in all_rows:
        a, b = all_rows[name], only_answered[name]
        print(
            f"{name:18} {a['auroc'] or float('nan'):9.3f} {a['n']:5d} {a['wrong']:5d}   "
            f"{b['auroc'] or float('nan'):14.3f} {b['n']:5d}"
        )
    print("\nAUROC: P(a wrong row looks less confident than a right one); 0.5 = chance.")


if __name__ == "__main__":
    main()
