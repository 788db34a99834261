"""gen's prompt reading and resume check, with no teacher: `python -m bench.prompt_stream`.

    python -m bench.prompt_stream --prompts N --work DIR [--measure-only]

Prepares in DIR (once; kept for later runs) `prompts.jsonl`, N distinct prompts in gen's
default fields (each distinct MMLU question in the built-in MMLU prompt text, then again
numbered, so none repeats), and `out/`, a gen output holding a record for every other prompt
(one-token responses: resume reads only the record ids). Then it does what `distill gen`
does before its teacher starts, through gen's public functions (`read_and_check`): read
every prompt, read the record ids already in the output, and find the prompts still to
do. It fails unless exactly every other prompt is found done. `--measure-only` skips the
preparing (it must have been done), so a caller measuring the process measures the reading.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa

from bench.synthetic import CREATED_AT, SyntheticSpec, mmlu_questions, synthetic_teacher
from bench.synthetic_rows import topk_block
from distill.codec import TopK, plain_topk_columns
from distill.gen.prompts import iter_prompts
from distill.gen.resume import existing_record_ids
from distill.schemas import RECORD_SCHEMA, Manifest, TeacherInfo, make_record_id
from distill.schemas.arrow import MESSAGE_TYPE, TEACHER_TYPE
from distill.schemas.manifest import TokenizerInfo
from distill.store import DatasetWriter, load_manifest

BATCH = 8192


def read_and_check(prompts: Path, out_dir: Path) -> tuple[int, int]:
    """(prompts read, prompts with a record already): gen's reading of its prompts and of
    what its output holds, as `distill gen --n 1` runs them, a prompt at a time. The one
    place to adapt when gen's reader and resume state change shape."""
    previous = load_manifest(out_dir)
    existing = existing_record_ids(out_dir, previous)
    teacher_id = previous.teachers[0].teacher_id
    read = done = 0
    for row in iter_prompts(prompts):
        read += 1
        done += make_record_id(row.prompt_id, 0, teacher_id) in existing
    return read, done


def gen_prompt_id(text: str) -> str:
    """The id gen gives a prompt seen once with no id field (`distill.gen.prompts`): the
    content hash of its chat messages and occurrence 1. If gen changes it, `main` fails."""
    canonical = json.dumps([{"role": "user", "content": text}], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(f"{canonical}\x1f1".encode()).hexdigest()[:16]


def _records(texts: list[str], ids: list[str], teacher: TeacherInfo, seed: int) -> pa.Table:
    """One-token records of these prompts (plain codec)."""
    n = len(texts)
    lengths = np.ones(n, np.int64)
    topk = topk_block(
        np.random.default_rng([seed, 2, n]), lengths, teacher.top_k, teacher.vocab_size
    )
    message = pa.StructArray.from_arrays(
        [pa.array(["user"] * n), pa.array(texts)], fields=list(MESSAGE_TYPE)
    )
    offsets = pa.array(np.arange(n + 1, dtype=np.int32))
    columns = {
        "record_id": pa.array([make_record_id(p, 0, teacher.teacher_id) for p in ids]),
        "prompt_id": pa.array(ids),
        "sample_index": pa.array(np.zeros(n, np.int32)),
        "teacher_id": pa.array([teacher.teacher_id] * n),
        "run_id": pa.array(["synthetic"] * n),
        "created_at": pa.array([CREATED_AT] * n, pa.timestamp("us", tz="UTC")),
        "source_file": pa.array(["prompts.jsonl"] * n),
        "source_row": pa.array(np.zeros(n, np.int64)),
        "domain": pa.array([None] * n, pa.string()),
        "reference": pa.array([None] * n, pa.string()),
        "messages": pa.ListArray.from_arrays(offsets, message),
        "prompt_token_ids": pa.ListArray.from_arrays(offsets, pa.array(np.ones(n, np.int32))),
        "response_text": pa.array(["A"] * n),
        "token_ids": pa.ListArray.from_arrays(offsets, pa.array(topk.sampled_ids, pa.int32())),
        **plain_topk_columns(
            TopK(topk.ids, topk.logprobs, np.full(n, teacher.top_k), topk.tail, lengths)
        ),
        "sampled_logprob": pa.ListArray.from_arrays(offsets, pa.array(topk.sampled_logprobs)),
        "finish_reason": pa.array(["length"] * n),
        "teacher": pa.array([teacher.model_dump(mode="json")] * n, TEACHER_TYPE),
    }
    return pa.table(columns).select(RECORD_SCHEMA.names).cast(RECORD_SCHEMA)


def prepare(work: Path, prompts: int, seed: int = 0) -> None:
    """`work/prompts.jsonl` and `work/out` (see the module docstring), a batch at a time."""
    if (work / "out" / "manifest.json").is_file():
        return
    # MMLU asks a few questions twice: keep one of each, so every prompt is seen once
    questions = list({q.text: q for q in mmlu_questions()[1]}.values())
    info = TokenizerInfo(tokenizer_hash="synthetic", vocab_size=49152, chat_template_hash="-")
    teacher = synthetic_teacher(SyntheticSpec(tokens=1, tokenizer="none"), info)
    writer = DatasetWriter(work / "out", RECORD_SCHEMA)
    with (work / "prompts.jsonl").open("w", encoding="utf-8") as fh:
        for start in range(0, prompts, BATCH):
            texts, lines = [], []
            for i in range(start, min(start + BATCH, prompts)):
                q = questions[i % len(questions)]
                cycle = i // len(questions)
                texts.append(q.text + (f"\n(variant {cycle})" if cycle else ""))
                row = {"prompt": texts[-1], "domain": q.domain, "reference": q.reference}
                lines.append(json.dumps(row, ensure_ascii=False) + "\n")
            fh.writelines(lines)
            done = texts[::2]  # every other prompt of the file (BATCH is even)
            writer.write(_records(done, [gen_prompt_id(t) for t in done], teacher, seed))
    writer.close(
        Manifest(
            schema_version=1,
            kind="generated",
            dataset_id=f"prompt-stream-{prompts}",
            created_at=CREATED_AT,
            teachers=[teacher],
            tokenizer=info,
            top_k=teacher.top_k,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--measure-only", action="store_true")
    args = parser.parse_args()
    if not args.measure_only:
        args.work.mkdir(parents=True, exist_ok=True)
        prepare(args.work, args.prompts)
        return
    read, done = read_and_check(args.work / "prompts.jsonl", args.work / "out")
    print(f"{read} prompts read, {done} with a record already, {read - done} to do")
    if read != args.prompts or done != (args.prompts + 1) // 2:
        sys.exit(f"expected {args.prompts} prompts read and {(args.prompts + 1) // 2} done")


if __name__ == "__main__":
    main()
