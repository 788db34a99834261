"""Shared fixtures: a fake dataset over the real vocabulary (49152) whose tokenizer matches the
tiny random student (`tiny_student`, tests/conftest.py), so training runs end to end in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.schemas import TeacherInfo
from tests.factories import make_record, teacher_for_tokenizer, write_fake_dataset

REAL_VOCAB = 49152


@pytest.fixture(scope="session")
def real_teacher_info(tiny_student: Path) -> TeacherInfo:
    """A fake teacher whose tokenizer fingerprints are the real (student's) ones."""
    return teacher_for_tokenizer(tiny_student, top_k=4, vocab_size=REAL_VOCAB)


@pytest.fixture(scope="session")
def real_vocab_dataset(
    real_teacher_info: TeacherInfo, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    records = [
        make_record(row=i, n_tokens=4 + i % 5, teacher=real_teacher_info, top_k=4)
        for i in range(20)
    ]
    out = tmp_path_factory.mktemp("dataset")
    write_fake_dataset(out, records)
    return out
