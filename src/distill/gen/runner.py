"""`distill gen`: prompts -> teacher -> sharded records with top-k, resumable.

Resume rule (every backend): a record's key is (prompt id, sample index, teacher id).
On start we read the record ids already in the output's shards and send only what is
missing, so re-running the same command after a crash or Ctrl-C completes the dataset
with no duplicates. Rows an API could not answer are listed in failed.jsonl (see
`distill.gen.failures`) and, having no record, are retried by the rerun too. A run that
would mix settings (another teacher, k or sampling) into an existing output is refused,
naming what differs. The run itself (resume, shards, failures, manifest, progress) is the
one `distill score` uses too: `distill.gen.run`; this module says what gen adds to it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path

from distill.dataset_card import write_card
from distill.engine import LOCAL, EngineConfig
from distill.gen.prompt_sources import PromptSource, source_name, source_sha256
from distill.gen.prompts import (
    FieldMapping,
    InvalidPrompt,
    PromptCounts,
    PromptFormat,
    PromptRow,
    iter_prompts,
)
from distill.gen.ray_replica import claim_output_for_ray, ray_job_checks, replica_job
from distill.gen.run import GenResult, Run, RunItem, RunSettings, Stream, Work, execute, open_run
from distill.locking import locks_output
from distill.schemas import CODECS, Manifest, SamplingParams, TeacherInfo
from distill.store import OutputWriteError
from distill.teachers.backend import Generation, GenRequest, TeacherBackend, streams
from distill.teachers.licenses import LicenseOptions, merge_licenses, run_licenses
from distill.teachers.sampled_targets import TARGETS
from distill.teachers.specs import DEFAULT_TEACHER, load_teacher, teacher_in_use

__all__ = ["GenResult", "generate_dataset", "sample_seed"]

INVALID_PROMPTS_FILE = "invalid_prompts.jsonl"


def sample_seed(seed: int, record_id: str) -> int:
    return int(hashlib.sha256(f"{seed}:{record_id}".encode()).hexdigest()[:15], 16)


class InvalidLog:
    """invalid_prompts.jsonl, written as the prompts stream past: emptied at the start of a
    run that has invalid rows (its pass over the prompts lists them all again)."""

    def __init__(self, out_dir: Path, expected: int) -> None:
        self.path = out_dir / INVALID_PROMPTS_FILE
        if expected:
            self.path.write_bytes(b"")

    def add(self, item: InvalidPrompt) -> None:
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(asdict(item), ensure_ascii=False) + "\n")
        except OSError as exc:
            raise OutputWriteError(f"{self.path}: write failed ({exc.strerror or exc})") from exc


@locks_output("out_dir")
def generate_dataset(
    prompts_path: PromptSource,
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
    licenses: LicenseOptions | None = None,
    engine: EngineConfig = LOCAL,
) -> GenResult:
    """`prompts_path`: a prompt file, a folder or glob of Parquet parts (a Hub snapshot), a
    saved `datasets` folder, or in memory a `pyarrow.Table` or `datasets.Dataset`
    (`distill.gen.prompt_sources`).

    `codec`: "plain" (schema 1 lists) or "packed" (schema 2, see `distill.codec`).

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

    `licenses`: what the user states of the prompts' and the teacher's licences; the
    manifest's `licenses` records them (with the prompt file's sha256, and what
    `distill.teachers.licenses` knows where nothing is stated), and `README.md`, the
    dataset card written at the end, prints them.

    `engine`: where the teacher work runs: this process, or a Ray cluster's pool of teacher
    replicas (`distill.gen.ray_engine`; `teacher` must then be a spec, which each replica
    loads). The records, shards' contents, manifest and resume rule are the same.
    """
    if codec not in CODECS:
        raise ValueError(f"--codec {codec!r}: use one of {sorted(CODECS)}")
    if top_k < 1:  # the vocab bound is checked once the teacher is known
        raise ValueError(f"--top-k {top_k}: must be at least 1")
    if engine.is_ray:
        ray_job_checks(teacher)
    sampling = sampling or SamplingParams()
    out_dir = Path(out_dir)
    if targets not in TARGETS:
        raise ValueError(f"--targets {targets!r}: use one of {list(TARGETS)}")
    # Bad options and bad prompt rows fail here, before a teacher is loaded (a vLLM engine
    # takes a minute to start): a first pass reads the whole file, streamed, and counts it;
    # the run streams it again.
    read = partial(iter_prompts, prompts_path, fmt, mapping, system_prompt, skip_invalid, limit)
    scanned = PromptCounts()
    for _ in read(counts=scanned):
        pass
    settings = RunSettings(
        batch_size=batch_size,
        shard_size=shard_size,
        codec=codec,
        progress=progress,
        per_row_failures=True,
        price_input=price_input,
        price_output=price_output,
    )
    params = {
        "prompts": source_name(prompts_path),
        "format": fmt,
        "limit": limit,
        "system_prompt": system_prompt,
        "skip_invalid": skip_invalid,
        "batch_size": batch_size,
        "targets": targets,
        **_price_params(price_input, price_output),
    }

    def load(spec: str) -> TeacherBackend:
        return load_teacher(spec, teacher_options, top_k=top_k, api_key_env=api_key_env)

    with teacher_in_use(teacher, load) as model:
        model = _with_targets(model, targets)
        if getattr(model, "hard_labels", False):
            # No token ids from this teacher: records hold text only, and KD must refuse them.
            params["hard_labels"] = True
        info = _checked_info(model, top_k, sampling)
        check = partial(_check_targets, out_dir, targets)
        # A Ray run claims OUT before reading it: a killed run's late replicas write nothing.
        claim = claim_output_for_ray(out_dir) if engine.is_ray else ""
        run = open_run(out_dir, model, info, params, settings, check)
        base_url = getattr(model, "base_url", None)
        run.manifest_fields["licenses"] = merge_licenses(
            run.previous.licenses if run.previous else [],
            run_licenses(
                source_name(prompts_path), info, base_url, licenses, source_sha256(prompts_path)
            ),
        )
        _start_counts(run, scanned)
        invalid = InvalidLog(out_dir, scanned.invalid)
        items = _missing_samples(run, read(), sampling.n, invalid)
        total = scanned.rows * sampling.n
        if engine.is_ray:
            from distill.gen.ray_engine import execute_on_ray

            job = replica_job(
                run,
                str(teacher),
                partial(_replica_teacher, teacher_options, top_k, api_key_env, targets),
                partial(_batch_work, sampling, top_k),
                partial(_stream_work, sampling, top_k),
                teacher_options,
                claim,
            )
            result = execute_on_ray(run, items, job, total, engine)
        else:
            stream = _stream_work(sampling, top_k, model)
            result = execute(run, items, _batch_work(sampling, top_k, model), total, stream)
    write_card(out_dir)
    return result


def _price_params(price_input: float | None, price_output: float | None) -> dict:
    if price_input is None and price_output is None:
        return {}
    return {"price_input_usd_per_1m": price_input, "price_output_usd_per_1m": price_output}


def _with_targets(model: TeacherBackend, targets: str) -> TeacherBackend:
    """The backend set to record `targets` ("sampled": the hf teacher only)."""
    if targets == "topk":
        return model
    if not hasattr(model, "targets"):
        raise ValueError(f"--targets {targets}: only the hf teacher backend supports it")
    return dataclasses.replace(model, targets=targets)  # type: ignore[type-var]


def _checked_info(model: TeacherBackend, top_k: int, sampling: SamplingParams) -> TeacherInfo:
    info = model.info(top_k, sampling)
    if top_k < 1 or (info.vocab_size and top_k > info.vocab_size):  # 0: unknown (an API)
        raise ValueError(f"--top-k {top_k}: must be between 1 and the vocab size")
    return info


def _check_targets(out_dir: Path, targets: str, previous: Manifest | None) -> None:
    held = previous.targets if previous is not None else targets
    if held != targets:
        raise ValueError(
            f"{out_dir}: holds {held} targets; resume with --targets {held} or use another --out"
        )


def _start_counts(run: Run, scanned: PromptCounts) -> None:
    run.counts.update(
        {
            "prompts": scanned.rows,
            "invalid_prompts": scanned.invalid,
            "skipped_header_rows": scanned.skipped_headers,
            "skipped_existing": 0,  # counted as the prompts stream past
            "written": 0,
            "failed": 0,
            "retries": 0,
        }
    )


def _missing_samples(
    run: Run, prompts: Iterable[PromptRow | InvalidPrompt], n: int, invalid: InvalidLog
) -> Iterator[RunItem]:
    """The (prompt, sample index) pairs with no record yet, tokenised, read lazily; counts
    the samples already done and lists the invalid rows as they pass."""
    for row in prompts:
        if isinstance(row, InvalidPrompt):
            invalid.add(row)
            continue
        prompt_ids: list[int] | None = None
        for index in range(n):
            record_id = run.record_id(row, index)
            if run.done(record_id):
                run.counts["skipped_existing"] += 1
                continue
            if prompt_ids is None:
                prompt_ids = run.model.encode_chat(row.messages)
            yield RunItem(row, index, record_id, prompt_ids)


def _replica_teacher(
    options: dict | None, top_k: int, api_key_env: str | None, targets: str, spec: str
) -> TeacherBackend:
    """The teacher as a Ray replica loads it: as `generate_dataset` does."""
    model = load_teacher(spec, options, top_k=top_k, api_key_env=api_key_env)
    return _with_targets(model, targets)


def _batch_work(sampling: SamplingParams, top_k: int, model: TeacherBackend) -> Work:
    return partial(_generate, model, sampling, top_k)


def _stream_work(sampling: SamplingParams, top_k: int, model: TeacherBackend) -> Stream | None:
    return partial(_generate_stream, model, sampling, top_k) if streams(model) else None


def _generate(
    model: TeacherBackend, sampling: SamplingParams, top_k: int, chunk: list[RunItem]
) -> list[Generation]:
    """One batch through the backend, each row with its own seed (from its record id)."""
    return model.generate(
        [item.prompt_ids for item in chunk],
        sampling,
        top_k,
        seeds=[sample_seed(sampling.seed, item.record_id) for item in chunk],
        messages=[item.row.messages for item in chunk],
    )


def _generate_stream(
    model: TeacherBackend, sampling: SamplingParams, top_k: int, items: Iterable[RunItem]
) -> Iterator[tuple[RunItem, Generation]]:
    """The items through a streaming backend, answered as they complete (any order)."""
    requests = (
        (
            item,
            GenRequest(
                item.prompt_ids, sample_seed(sampling.seed, item.record_id), item.row.messages
            ),
        )
        for item in items
    )
    return model.generate_stream(requests, sampling, top_k)  # type: ignore[attr-defined]
