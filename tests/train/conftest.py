"""Shared fixtures: a tiny random student on the real teacher tokenizer and a fake dataset
over the real vocabulary (49152), so training runs end to end in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from distill.schemas import TeacherInfo
from tests.factories import make_record, teacher_for_tokenizer, write_fake_dataset

REAL_VOCAB = 49152


@pytest.fixture(scope="session")
def teacher_dir() -> Path:
    from distill.teachers.embedded import EmbeddedTeacherMissing, embedded_teacher_dir

    try:
        return embedded_teacher_dir()
    except EmbeddedTeacherMissing as exc:  # pragma: no cover - depends on the machine
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def tiny_student(teacher_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from distill.train import build_random_student

    out = tmp_path_factory.mktemp("student")
    return build_random_student(
        teacher_dir, out, hidden_size=16, num_layers=1, heads=2, intermediate=32, seed=0
    )


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
