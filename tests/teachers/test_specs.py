"""Teacher specs and the lifetime of a teacher loaded from one."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from distill.teachers.specs import parse_teacher_spec, teacher_in_use
from distill.teachers.vllm_teacher import VLLMEngineConfig, VLLMTeacher


class Closable:
    def __init__(self) -> None:
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_teacher_loaded_from_a_spec_is_closed_even_when_the_run_fails() -> None:
    loaded: list[Closable] = []

    def load(spec: str) -> Closable:
        loaded.append(Closable())
        return loaded[-1]

    with teacher_in_use("vllm:/m", load) as model:
        assert model is loaded[0] and model.closed == 0
    assert loaded[0].closed == 1
    with pytest.raises(RuntimeError, match="boom"), teacher_in_use("vllm:/m", load):
        raise RuntimeError("boom")
    assert loaded[1].closed == 1


def test_a_teacher_passed_in_loaded_is_left_open_for_its_owner() -> None:
    def load(spec: str) -> Closable:
        raise AssertionError("nothing to load")

    mine = Closable()
    with teacher_in_use(mine, load) as model:
        assert model is mine
    assert mine.closed == 0
    # A backend without close() (hf, openai) is fine either way.
    with teacher_in_use("hf:x", lambda spec: SimpleNamespace()) as model:
        assert not hasattr(model, "close")


def test_vllm_close_shuts_the_engine_core_client_down() -> None:
    calls: list[str] = []
    core = SimpleNamespace(shutdown=lambda: calls.append("shutdown"))
    llm = SimpleNamespace(llm_engine=SimpleNamespace(engine_core=core))
    teacher = VLLMTeacher(llm, None, None, "m", "r", VLLMEngineConfig())
    teacher.close()
    assert calls == ["shutdown"]
    # An engine without the client (another vLLM version) is left to its own teardown.
    VLLMTeacher(SimpleNamespace(), None, None, "m", "r", VLLMEngineConfig()).close()


def test_unknown_backend_is_named() -> None:
    assert parse_teacher_spec("vllm:/models/x").backend == "vllm"
    with pytest.raises(ValueError, match="unknown backend 'tgi'"):
        parse_teacher_spec("tgi:/models/x")
