"""Shared fixtures. The real embedded teacher is loaded once per session (0.2 s after the
first-ever dequantisation, which takes ~25 s and is cached in $DISTILL_CACHE); a tiny random
student on its tokenizer serves the train and eval tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def embedded_teacher():
    from distill.teachers.specs import load_teacher

    return load_teacher("hf:embedded")


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
def ray_cluster():
    """One local Ray cluster (2 CPUs, as on CI) for the whole session: starting one costs
    ~5 s. Jobs given `EngineConfig(kind="ray")` join it as it is (`ray_session`). Tests
    that need their own cluster (`ray start` head + worker) drive it from a subprocess."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed")
    from distill.engine import EngineConfig, ray_session

    with ray_session(EngineConfig(kind="ray", num_cpus=2)):
        yield ray
    assert not ray.is_initialized()
