"""`distill score`: teacher-forced top-k for data that already has responses.

Existing SFT data becomes KD data: instead of sampling, the teacher reads prompt + given
response and we keep its top-k at every response position: the backend's `score`
(`distill.teachers.backend.TeacherBackend`). Two teachers can score:
- `hf:` (transformers): ONE forward pass per batch (`distill.teachers.hf_teacher_forcing`).
  The tail mass is exact (a logsumexp outside the top-k).
- `vllm:` the offline engine's `prompt_logprobs` over prompt + response (raw log-probs, see
  `VLLMTeacher.score`). The tail mass is 1 - sum(exp(top-k)), as in vLLM `gen` records:
  vLLM returns only the top-k. Same records otherwise.
An API can't (`openai:` raises `CannotScoreError`, before anything is written).

The source is a prompt file with a response column (JSONL, Parquet, CSV; fields as in
`distill gen`, plus `response`), or an existing distill dataset, whose responses are
re-scored by another teacher.

What is read, and how responses become ids: `distill.gen.score_inputs`.

Records, shards, manifest and resume are `distill gen`'s (the shared run,
`distill.gen.run`): a record's id is (prompt id, sample index, teacher id), the manifest
says params.mode "score", and re-running the same command scores only what is missing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from distill.dataset_card import lineage_licenses, write_card
from distill.engine import LOCAL, EngineConfig
from distill.gen.prompt_sources import PromptSource, in_memory, source_name, source_sha256
from distill.gen.prompts import PromptFormat
from distill.gen.ray_replica import claim_output_for_ray, ray_job_checks, replica_job
from distill.gen.run import GenResult, Run, RunItem, RunSettings, Work, execute, open_run
from distill.gen.score_inputs import (
    ScoreItem,
    ScoreMapping,
    iter_responses,
    load_dataset_responses,
    response_ids,
    scan_responses,
)
from distill.locking import locks_output
from distill.schemas import LicenseInfo, Manifest, SamplingParams, TeacherInfo
from distill.store import MANIFEST_NAME, load_manifest, parent_ref
from distill.teachers.backend import CannotScoreError, Generation, TeacherBackend
from distill.teachers.licenses import (
    LicenseOptions,
    merge_licenses,
    run_licenses,
    teacher_license,
)
from distill.teachers.specs import DEFAULT_TEACHER, load_teacher, teacher_in_use

SCORE_MODE = "score"


@dataclass(frozen=True)
class ForcedItem(RunItem):
    """A record to score: the prompt ids plus the response ids the teacher is forced through."""

    source: ScoreItem
    response_ids: list[int]

    @property
    def length(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


@locks_output("out_dir")
def score_dataset(
    source: PromptSource,
    out_dir: Path,
    *,
    teacher: str | TeacherBackend = DEFAULT_TEACHER,
    teacher_options: dict | None = None,
    top_k: int = 20,
    fmt: PromptFormat | None = None,
    mapping: ScoreMapping | None = None,
    batch_size: int = 8,
    shard_size: int = 64,
    progress: bool = True,
    licenses: LicenseOptions | None = None,
    engine: EngineConfig = LOCAL,
) -> GenResult:
    """Teacher-forced top-k for every (prompt, response) of `source`, written to `out_dir`.

    `source`: a prompt file with a response column (see `ScoreMapping`; also a folder or
    glob of Parquet parts, or a `pyarrow.Table` / `datasets.Dataset` in memory, as in
    `generate_dataset`) or a distill dataset directory (then named as the output's parent,
    whose licences carry over).
    `teacher`: an `hf:` or `vllm:` spec (with `teacher_options`, the `--teacher-opt` of the
    backend) or a loaded teacher. `licenses` and `engine`: as in `generate_dataset`. Writes
    the dataset card, `README.md`, at the end.
    """
    if top_k < 1:  # the vocab bound is checked once the teacher is known
        raise ValueError(f"--top-k {top_k}: must be at least 1")
    out_dir = Path(out_dir)
    source = source if in_memory(source) else Path(source)  # type: ignore[arg-type]
    if engine.is_ray:
        ray_job_checks(teacher)
    from_dataset = not in_memory(source) and (Path(source) / MANIFEST_NAME).is_file()
    # A prompt file's bad rows fail before a teacher is loaded (a vLLM engine takes a
    # minute to start): one streamed pass checks it; the run reads it again. A dataset's
    # rows are read once the teacher's tokenizer is known.
    total = (
        sum(s.rows for s in load_manifest(source).shards)
        if from_dataset
        else scan_responses(source, fmt, mapping)
    )
    settings = RunSettings(
        batch_size=batch_size, shard_size=shard_size, label="score", progress=progress
    )
    params = {"mode": SCORE_MODE, "source": source_name(source), "format": fmt}
    params["batch_size"] = batch_size
    load = partial(_score_teacher, teacher_options, top_k)
    with teacher_in_use(teacher, load) as model:
        try:
            model.score([], top_k)  # no work: a backend that can't score says so here
        except CannotScoreError as err:
            raise ValueError(f"--teacher {teacher!r}: {err}") from err
        info = model.info(top_k, SamplingParams())
        if not 1 <= top_k <= info.vocab_size:
            raise ValueError(f"--top-k {top_k}: must be between 1 and the vocab size")
        items = (
            load_dataset_responses(source, info.tokenizer_hash)
            if from_dataset
            else iter_responses(source, fmt, mapping)
        )
        claim = claim_output_for_ray(out_dir) if engine.is_ray else ""  # as in gen
        run = open_run(out_dir, model, info, params, settings, partial(_check_mode, out_dir))
        earlier = run.previous.licenses if run.previous else []
        new = _licenses(source, from_dataset, info, licenses or LicenseOptions())
        run.manifest_fields["licenses"] = merge_licenses(earlier, new)
        if from_dataset:
            run.manifest_fields["parents"] = [parent_ref(source, out_dir)]
        run.counts.update({"prompts": total, "skipped_existing": 0})
        missing = _missing_responses(run, items)
        if engine.is_ray:
            from distill.gen.ray_engine import execute_on_ray

            work = partial(_force_work, top_k)
            job = replica_job(run, str(teacher), load, work, _no_stream, teacher_options, claim)
            result = execute_on_ray(run, missing, job, total, engine)
        else:
            result = execute(run, missing, _force_work(top_k, model), total)
    write_card(out_dir)
    return result


def _licenses(
    source: PromptSource, from_dataset: bool, info: TeacherInfo, options: LicenseOptions
) -> list[LicenseInfo]:
    """A prompt file's licence and the teacher's; from a dataset, the licences of its whole
    lineage (its prompts and the teachers that wrote the responses) and the scoring teacher's."""
    if not from_dataset:
        name = source_name(source)
        return run_licenses(name, info, None, options, source_sha256(source))
    dataset = Path(source)  # type: ignore[arg-type]
    return merge_licenses(lineage_licenses(dataset), [teacher_license(info, None, options)])


def _check_mode(out_dir: Path, previous: Manifest | None) -> None:
    if previous is not None and previous.params.get("mode") != SCORE_MODE:
        raise ValueError(f"{out_dir}: holds `distill gen` output; score into another --out")


def _missing_responses(run: Run, items: Iterable[ScoreItem]) -> Iterator[ForcedItem]:
    """The responses with no record yet, with their ids, read lazily; counts the rest."""
    for item in items:
        record_id = run.record_id(item.row, item.sample_index)
        if run.done(record_id):
            run.counts["skipped_existing"] += 1
            continue
        prompt_ids = run.model.encode_chat(item.row.messages)
        response = response_ids(run.model, item)
        yield ForcedItem(item.row, item.sample_index, record_id, prompt_ids, item, response)


def _score_teacher(options: dict | None, top_k: int, spec: str) -> TeacherBackend:
    return load_teacher(spec, options, top_k=top_k)


def _force_work(top_k: int, model: TeacherBackend) -> Work:
    return partial(_force, model, top_k)


def _no_stream(model: TeacherBackend) -> None:
    """Scoring has no streaming backend (an API can't score)."""


def _force(model: TeacherBackend, top_k: int, chunk: list[ForcedItem]) -> list[Generation]:
    """One batch teacher-forced through the backend (the run's `work`)."""
    gens = model.score([(item.prompt_ids, item.response_ids) for item in chunk], top_k)
    for item, gen in zip(chunk, gens, strict=True):
        # The record keeps the source's text and finish reason, not a decoding of its ids.
        gen.finish_reason, gen.text = item.source.finish_reason, item.source.response_text
    return gens
