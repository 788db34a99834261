"""`distill gen`: prompts -> teacher -> sharded records with top-k, resumable.

Resume rule (every backend): a record's key is (prompt id, sample index, teacher id).
On start we read the record ids already in the output's shards and send only what is
missing, so re-running the same command after a crash or Ctrl-C completes the dataset
with no duplicates. Rows an API could not answer are listed in failed.jsonl (see
`distill.gen.failures`) and, having no record, are retried by the rerun too. A run that
would mix settings (another teacher, k or sampling) into an existing output is refused,
naming what differs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from distill.gen.failures import (
    FAILED_FILE,
    append_failures,
    cost_usd,
    failure_entry,
    start_failure_log,
    tally,
)
from distill.gen.progress import GenProgress
from distill.gen.prompts import FieldMapping, PromptFormat, PromptRow, load_prompts
from distill.gen.resume import build_manifest, check_resumable, existing_record_ids
from distill.gen.shards import ShardWriter, new_run_id
from distill.locking import locks_output
from distill.schemas import (
    CODECS,
    Manifest,
    SamplingParams,
    TeacherInfo,
    TeacherRecord,
    make_record_id,
)
from distill.store import atomic_write_bytes, remove_stale_temporaries
from distill.teachers.backend import Generation, TeacherBackend, TeacherUnavailableError
from distill.teachers.sampled_targets import TARGETS
from distill.teachers.specs import DEFAULT_TEACHER, load_teacher, teacher_in_use

INVALID_PROMPTS_FILE = "invalid_prompts.jsonl"


@dataclass
class GenResult:
    out_dir: Path
    records_total: int
    records_written: int
    records_skipped_existing: int
    prompts: int
    invalid_prompts: int
    tokens_generated: int
    seconds: float
    counts: dict[str, int] = field(default_factory=dict)
    failed: int = 0  # rows with no record, listed in failed.jsonl
    stats: dict[str, float] = field(default_factory=dict)  # cost_usd when prices were given

    @property
    def failed_path(self) -> Path:
        return self.out_dir / FAILED_FILE


def sample_seed(seed: int, record_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()[:15], 16)


def _write_invalid(out_dir: Path, invalid: list) -> None:
    lines = "".join(json.dumps(asdict(item), ensure_ascii=False) + "\n" for item in invalid)
    atomic_write_bytes(out_dir / INVALID_PROMPTS_FILE, lines.encode())


@locks_output("out_dir")
def generate_dataset(
    prompts_path: Path,
    out_dir: Path,
    *,
    fmt: PromptFormat | None = None,
    teacher: str | TeacherBackend = DEFAULT_TEACHER,
    teacher_options: dict | None = None,
    api_key_env: str | None = None,
    top_k: int = 20,
    sampling: SamplingParams | None = None,
    limit: int | None = None,
    skip_invalid: bool = False,
    mapping: FieldMapping | None = None,
    system_prompt: str | None = None,
    batch_size: int = 16,
    shard_size: int = 64,
    progress: bool = True,
    codec: str = "plain",
    targets: str = "topk",
    price_input: float | None = None,
    price_output: float | None = None,
) -> GenResult:
    """`codec`: "plain" (schema 1 lists) or "packed" (schema 2, see `distill.codec`).

    `targets`: "topk" (the teacher's k most likely ids) or "sampled" (k draws from its
    distribution with importance weights, `distill.teachers.sampled_targets`; hf teachers only),
    recorded as the manifest's `targets` (and in `params`).

    `teacher` is a spec (`hf:PATH`, `vllm:DIR`, `openai:MODEL@URL`) or a loaded backend;
    `teacher_options` configure the backend (see `distill.teachers.specs.load_teacher`) and
    `api_key_env` names the environment variable an API backend reads its key from.

    `price_input` / `price_output`: USD per 1M prompt / completion tokens; with either, the
    manifest's `stats.cost_usd` is this run's cost from the usage the API reported.
    A row the backend could not get is not written but listed in failed.jsonl; if every row
    of the first batch fails, or the teacher refuses the key or model, the run stops with
    `TeacherUnavailableError` (the rows already written are kept).
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    sampling = sampling or SamplingParams()
    out_dir = Path(out_dir)
    if targets not in TARGETS:
        raise ValueError(f"--targets {targets!r}: use one of {list(TARGETS)}")
    # Bad options and bad prompt rows fail here, before a teacher is loaded (a vLLM engine
    # takes a minute to start).
    batch = load_prompts(prompts_path, fmt, mapping, system_prompt, skip_invalid, limit)

    def load(spec: str) -> TeacherBackend:
        return load_teacher(spec, teacher_options, top_k=top_k, api_key_env=api_key_env)

    with teacher_in_use(teacher, load) as model:
        if targets != "topk":
            if not hasattr(model, "targets"):
                raise ValueError(f"--targets {targets}: only the hf teacher backend supports it")
            model = dataclasses.replace(model, targets=targets)
        info = model.info(top_k, sampling)
        if top_k < 1 or (info.vocab_size and top_k > info.vocab_size):  # 0: unknown (an API)
            raise ValueError(f"--top-k {top_k}: must be between 1 and the vocab size")
        out_dir.mkdir(parents=True, exist_ok=True)
        previous = check_resumable(out_dir, info, codec)
        held = previous.targets if previous is not None else targets
        if held != targets:
            raise ValueError(
                f"{out_dir}: holds {held} targets; "
                f"resume with --targets {held} or use another --out"
            )
        remove_stale_temporaries(out_dir)
        if batch.invalid:
            _write_invalid(out_dir, batch.invalid)
        existing = existing_record_ids(out_dir, previous)
        run_id = new_run_id()
        params = {
            "prompts": str(prompts_path),
            "format": fmt,
            "limit": limit,
            "system_prompt": system_prompt,
            "skip_invalid": skip_invalid,
            "batch_size": batch_size,
            "targets": targets,
        }
        if price_input is not None or price_output is not None:
            params["price_input_usd_per_1m"] = price_input
            params["price_output_usd_per_1m"] = price_output
        if getattr(model, "hard_labels", False):
            # No token ids from this teacher: records hold text only, and KD must refuse them.
            params["hard_labels"] = True
        work = [
            (row, index, model.encode_chat(row.messages))
            for row in batch.rows
            for index in range(sampling.n)
            if make_record_id(row.prompt_id, index, info.teacher_id) not in existing
        ]
        # Longest prompts first, in length order: less left-padding per batch, and the
        # slowest batches show up at the start of the progress bar, not the end.
        work.sort(key=lambda item: -len(item[2]))
        counts = {
            "prompts": len(batch.rows),
            "invalid_prompts": len(batch.invalid),
            "skipped_header_rows": batch.skipped_headers,
            "skipped_existing": len(batch.rows) * sampling.n - len(work),
            "written": 0,
            "failed": 0,
            "retries": 0,
        }
        stats: dict[str, float] = {}

        def manifest() -> Manifest:
            return build_manifest(
                out_dir, previous, model, info, params, run_id, counts, codec, run_stats=stats
            )

        writer = ShardWriter(out_dir, codec, shard_size, manifest)
        failed_log = start_failure_log(out_dir, info.teacher_id)
        tokens = 0
        with GenProgress(total=len(work), enabled=progress) as bar:
            for start in range(0, len(work), batch_size):
                chunk = work[start : start + batch_size]
                ids = [
                    make_record_id(row.prompt_id, index, info.teacher_id) for row, index, _ in chunk
                ]
                try:
                    gens = model.generate(
                        [p for _, _, p in chunk],
                        sampling,
                        top_k,
                        seeds=[sample_seed(sampling.seed, rid) for rid in ids],
                        messages=[row.messages for row, _, _ in chunk],
                    )
                except Exception:
                    # Whatever stops the run (a refused key, or a bug), the rows already
                    # answered are written first: with a paid API they cost money.
                    writer.finish()
                    raise
                now = datetime.now(UTC)
                batch_tokens = sum(len(g.token_ids) for g in gens)
                tokens += batch_tokens
                tally(counts, gens)
                cost = cost_usd(counts, price_input, price_output)
                if cost is not None:
                    stats["cost_usd"] = cost
                bar.advance(len(chunk), batch_tokens)
                rows = list(zip(chunk, ids, gens, strict=True))
                append_failures(
                    failed_log,
                    [
                        failure_entry(row.prompt_id, index, rid, info.teacher_id, gen, run_id)
                        for (row, index, _), rid, gen in rows
                        if gen.failure is not None
                    ],
                )
                # after the tally: a flush rewrites the manifest from `counts`
                writer.add(
                    [
                        build_record(row, index, rid, prompt_ids, gen, model, info, run_id, now)
                        for (row, index, prompt_ids), rid, gen in rows
                        if gen.failure is None
                    ]
                )
                if counts["written"] == 0 and counts["failed"] >= min(batch_size, len(work)):
                    # Nothing has worked (wrong URL, server down): stop rather than fail every row.
                    writer.finish()
                    first = next(g.failure.reason for g in gens if g.failure is not None)
                    raise TeacherUnavailableError(
                        f"all {counts['failed']} requests failed so far, none succeeded; first: "
                        f"{first} (every failure is in {failed_log})"
                    )
        final = writer.finish()
        return GenResult(
            out_dir=out_dir,
            records_total=final.counts["rows"],
            records_written=writer.written,
            records_skipped_existing=counts["skipped_existing"],
            prompts=len(batch.rows),
            invalid_prompts=len(batch.invalid),
            tokens_generated=tokens,
            seconds=bar.elapsed,
            counts=final.counts,
            failed=counts["failed"],
            stats=dict(stats),
        )


def build_record(
    row: PromptRow,
    index: int,
    record_id: str,
    prompt_ids: list[int],
    gen: Generation,
    model: TeacherBackend,
    info: TeacherInfo,
    run_id: str,
    now: datetime,
) -> TeacherRecord:
    return TeacherRecord(
        record_id=record_id,
        prompt_id=row.prompt_id,
        sample_index=index,
        teacher_id=info.teacher_id,
        run_id=run_id,
        created_at=now,
        source_file=row.source_file,
        source_row=row.source_row,
        domain=row.domain,
        reference=row.reference,
        messages=row.messages,
        prompt_token_ids=prompt_ids,
        response_text=gen.text if gen.text is not None else model.decode(gen.token_ids),
        token_ids=gen.token_ids,
        topk_ids=gen.topk_ids,
        topk_logprobs=gen.topk_logprobs,
        sampled_logprob=gen.sampled_logprob,
        tail_mass=gen.tail_mass,
        finish_reason=gen.finish_reason,
        teacher=info,
    )
