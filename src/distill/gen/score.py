"""`distill score`: teacher-forced top-k for data that already has responses.

Existing SFT data becomes KD data: instead of sampling, the teacher reads prompt + given
response and we keep its top-k at every response position. Two teachers can score:
- `hf:` (transformers): ONE forward pass per batch (right-padded, no KV cache, the model's
  dtype, log-softmax in float32); the logits at position P-1+j (P = prompt length) predict
  response token j. The tail mass is exact (a logsumexp outside the top-k).
- `vllm:` the offline engine's `prompt_logprobs` over prompt + response (raw log-probs, see
  `VLLMTeacher.score`). The tail mass is 1 - sum(exp(top-k)), as in vLLM `gen` records:
  vLLM returns only the top-k. Same records otherwise.

The source is a prompt file with a response column (JSONL, Parquet, CSV; fields as in
`distill gen`, plus `response`), or an existing distill dataset, whose responses are
re-scored by another teacher.

What is read, and how responses become ids: `distill.gen.score_inputs`.

Records, shards, manifest and resume are `distill gen`'s (`distill.gen.runner`): a
record's id is (prompt id, sample index, teacher id), the manifest says params.mode
"score", and re-running the same command scores only what is missing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import torch

from distill.gen.progress import GenProgress
from distill.gen.prompts import (
    PromptFormat,
)
from distill.gen.resume import build_manifest, check_resumable, existing_record_ids
from distill.gen.runner import GenResult, build_record
from distill.gen.score_inputs import (
    ScoreMapping,
    load_dataset_responses,
    load_responses,
    response_ids,
)
from distill.gen.shards import ShardWriter, new_run_id
from distill.locking import locks_output
from distill.schemas import (
    SamplingParams,
    make_record_id,
)
from distill.store import (
    MANIFEST_NAME,
    remove_stale_temporaries,
)
from distill.teachers.backend import Generation
from distill.teachers.hf_teacher import HFTeacher
from distill.teachers.specs import DEFAULT_TEACHER, load_teacher, teacher_in_use
from distill.teachers.topk_capture import capture_topk
from distill.teachers.vllm_teacher import VLLMTeacher

SCORE_MODE = "score"


@torch.inference_mode()
def score_batch(
    teacher: HFTeacher, pairs: list[tuple[list[int], list[int]]], top_k: int
) -> list[Generation]:
    """Top-k at each response position of (prompt ids, response ids), one forward pass.

    Right padding keeps every real token at its natural position (0..len-1), so the
    default position ids are right and the pad tail is masked out.
    """
    pad_id = teacher.tokenizer.pad_token_id
    pad_id = pad_id if pad_id is not None else next(iter(teacher.stop_ids))
    width = max(len(p) + len(r) for p, r in pairs)
    ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for row, (prompt, response) in enumerate(pairs):
        seq = prompt + response
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    logits = teacher.model(input_ids=ids, attention_mask=mask, use_cache=False).logits
    # Logits at P-1+j predict response token j; gather them for all rows, then one top-k.
    rows = [logits[row, len(p) - 1 : len(p) - 1 + len(r)] for row, (p, r) in enumerate(pairs)]
    step = capture_topk(torch.cat(rows), top_k)
    targets = torch.tensor([t for _, r in pairs for t in r], dtype=torch.long)
    sampled = step.logprobs_full.gather(-1, targets[:, None])[:, 0].tolist()
    top_ids, top_lp, tails = step.ids.tolist(), step.logprobs.tolist(), step.tail_mass.tolist()
    out, start = [], 0
    for _, response in pairs:
        end = start + len(response)
        out.append(
            Generation(
                token_ids=list(response),
                topk_ids=top_ids[start:end],
                topk_logprobs=top_lp[start:end],
                sampled_logprob=sampled[start:end],
                tail_mass=tails[start:end],
                finish_reason="stop",
            )
        )
        start = end
    return out


Scorer = Callable[[list[tuple[list[int], list[int]]], int], list[Generation]]


def scorer_for(teacher: Any, spec: Any) -> Scorer:
    """The teacher-forcing function of a backend that has one (hf: and vllm:)."""
    if isinstance(teacher, HFTeacher):
        return partial(score_batch, teacher)
    if isinstance(teacher, VLLMTeacher):
        return teacher.score
    # An API returns log-probs of the tokens it generates, not of tokens it is given.
    raise ValueError(f"--teacher {spec!r}: scoring needs an hf: or vllm: teacher")


@locks_output("out_dir")
def score_dataset(
    source: Path,
    out_dir: Path,
    *,
    teacher: str | HFTeacher | VLLMTeacher = DEFAULT_TEACHER,
    teacher_options: dict | None = None,
    top_k: int = 20,
    fmt: PromptFormat | None = None,
    mapping: ScoreMapping | None = None,
    batch_size: int = 8,
    shard_size: int = 64,
    progress: bool = True,
) -> GenResult:
    """Teacher-forced top-k for every (prompt, response) of `source`, written to `out_dir`.

    `source`: a prompt file with a response column (see `ScoreMapping`) or a distill
    dataset directory. `teacher`: an `hf:` or `vllm:` spec (with `teacher_options`, the
    `--teacher-opt` of the backend) or a loaded teacher.
    """
    source, out_dir = Path(source), Path(out_dir)
    from_dataset = source.is_dir() and (source / MANIFEST_NAME).is_file()
    # A prompt file's bad rows fail before a teacher is loaded (a vLLM engine takes a
    # minute to start); a dataset's rows are read once the teacher's tokenizer is known.
    items = None if from_dataset else load_responses(source, fmt, mapping)
    with teacher_in_use(
        teacher, lambda spec: load_teacher(spec, teacher_options, top_k=top_k)
    ) as model:
        scorer = scorer_for(model, teacher)
        info = model.info(top_k, SamplingParams())
        if not 1 <= top_k <= info.vocab_size:
            raise ValueError(f"--top-k {top_k}: must be between 1 and the vocab size")
        if items is None:
            items = load_dataset_responses(source, info.tokenizer_hash)
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = check_resumable(out_dir, info)
        if previous is not None and previous.params.get("mode") != SCORE_MODE:
            raise ValueError(f"{out_dir}: holds `distill gen` output; score into another --out")
        remove_stale_temporaries(out_dir)
        existing = existing_record_ids(out_dir, previous)
        run_id = new_run_id()
        params = {
            "mode": SCORE_MODE,
            "source": str(source),
            "format": fmt,
            "batch_size": batch_size,
        }
        work = []
        for item in items:
            rid = make_record_id(item.row.prompt_id, item.sample_index, info.teacher_id)
            if rid not in existing:
                work.append(
                    (item, rid, model.encode_chat(item.row.messages), response_ids(model, item))
                )
        work.sort(key=lambda w: -(len(w[2]) + len(w[3])))  # less padding per batch
        counts = {"prompts": len(items), "skipped_existing": len(items) - len(work)}
        writer = ShardWriter(
            out_dir,
            "plain",
            shard_size,
            lambda: build_manifest(out_dir, previous, model, info, params, run_id, counts),
        )
        tokens = 0
        with GenProgress(total=len(work), enabled=progress, label="score") as bar:
            for start in range(0, len(work), batch_size):
                chunk = work[start : start + batch_size]
                gens = scorer([(p, r) for _, _, p, r in chunk], top_k)
                now = datetime.now(UTC)
                records = []
                for (item, rid, prompt_ids, _), gen in zip(chunk, gens, strict=True):
                    gen.finish_reason, gen.text = item.finish_reason, item.response_text
                    records.append(
                        build_record(
                            item.row,
                            item.sample_index,
                            rid,
                            prompt_ids,
                            gen,
                            model,
                            info,
                            run_id,
                            now,
                        )
                    )
                batch_tokens = sum(len(g.token_ids) for g in gens)
                tokens += batch_tokens
                bar.advance(len(chunk), batch_tokens)
                writer.add(records)
        final = writer.finish()
        return GenResult(
            out_dir=out_dir,
            records_total=final.counts["rows"],
            records_written=writer.written,
            records_skipped_existing=counts["skipped_existing"],
            prompts=len(items),
            invalid_prompts=0,
            tokens_generated=tokens,
            seconds=bar.elapsed,
            counts=final.counts,
        )
