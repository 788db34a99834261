"""Teacher specs: `hf:PATH` (default: the embedded SmolLM2), `vllm:DIR`, `openai:MODEL@URL`.

`load_teacher` returns a `TeacherBackend` (see `distill.teachers.backend`). Backend options come
as a dict (the CLI's repeated `--teacher-opt KEY=VALUE`) and are validated by the backend's
pydantic config, so a misspelt option is an error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, field_validator

from distill.model_specs import require_extra, resolve_checkpoint
from distill.teachers.backend import TeacherBackend
from distill.teachers.embedded import EMBEDDED_MODEL_ID, embedded_gguf_path, embedded_teacher_dir
from distill.teachers.hf_teacher import HFTeacher, load_hf_teacher

DEFAULT_TEACHER = "hf:embedded"


@dataclass(frozen=True)
class TeacherSpec:
    backend: str
    target: str

    @property
    def is_embedded(self) -> bool:
        return self.backend == "hf" and self.target in ("embedded", "smollm2", "")


def parse_teacher_spec(spec: str) -> TeacherSpec:
    backend, sep, target = spec.partition(":")
    if not sep:
        # A bare path is a local checkpoint, the most common case after the default.
        return TeacherSpec("hf", spec)
    if backend not in ("hf", "vllm", "openai"):
        raise ValueError(
            f"--teacher '{spec}': unknown backend '{backend}' (use hf:, vllm: or openai:)"
        )
    return TeacherSpec(backend, target)


def check_teacher_spec(spec: str, options: dict[str, Any] | None = None) -> TeacherSpec:
    """What can be known of a `--teacher` spec without loading it: its backend, that the
    backend's package is installed (naming the extra), that an hf: checkpoint is a local
    folder (a Hub id gets the line on downloading it), and its `--teacher-opt` options
    (a pydantic `ValidationError` names the option). Raises a one-line error."""
    parsed = parse_teacher_spec(spec)
    if parsed.backend == "openai":
        require_extra("openai", "api", f"--teacher '{spec}'")
        from distill.teachers.openai_config import OpenAIConfig

        OpenAIConfig(**(options or {}))
    elif parsed.backend == "hf":
        HFOptions(**(options or {}))
        if not parsed.is_embedded:
            resolve_checkpoint(f"hf:{parsed.target}", "--teacher", hub=False)
    return parsed


def load_teacher(
    spec: str,
    options: dict[str, Any] | None = None,
    *,
    top_k: int = 20,
    api_key_env: str | None = None,
) -> TeacherBackend:
    """The backend a `--teacher` spec names; `top_k` sizes engines that must know it."""
    parsed = check_teacher_spec(spec, options)
    options = dict(options or {})
    if parsed.backend == "vllm":
        return _load_vllm(spec, parsed.target, options, top_k)
    if parsed.backend == "openai":
        from distill.teachers.openai_teacher import OpenAIConfig, load_openai_teacher

        return load_openai_teacher(parsed.target, OpenAIConfig(**options), api_key_env)
    return _load_hf(spec, parsed, HFOptions(**options))


@contextmanager
def teacher_in_use(
    teacher: str | TeacherBackend, load: Callable[[str], TeacherBackend]
) -> Iterator[TeacherBackend]:
    """`teacher` itself when it is already loaded (its owner closes it); else `load(spec)`,
    closed on the way out when the backend has a `close()` (vLLM's engine processes)."""
    if not isinstance(teacher, str):
        yield teacher
        return
    model = load(teacher)
    try:
        yield model
    finally:
        close = getattr(model, "close", None)
        if close is not None:
            close()


def _load_vllm(spec: str, target: str, options: dict[str, Any], top_k: int) -> TeacherBackend:
    try:
        import vllm  # noqa: F401

        from distill.teachers.vllm_teacher import VLLMEngineConfig, load_vllm_teacher
    except ImportError as err:
        raise NotImplementedError(
            f"--teacher '{spec}': vLLM is not installed in this environment ({err}); run "
            "`bash scripts/setup_vllm.sh` and use `.venv-vllm/bin/distill gen ...`"
        ) from err
    path = Path(target).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--teacher '{spec}': {path} is not a checkpoint directory")
    return load_vllm_teacher(path, VLLMEngineConfig(**options), max_logprobs=top_k)


class HFOptions(BaseModel):
    """`--teacher-opt` keys of the transformers backend; a typo is an error naming it."""

    model_config = ConfigDict(extra="forbid")
    device: str = Field(
        "auto", description="auto (a GPU when present, as `distill train`) | cpu | cuda | cuda:N"
    )
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        "float32", description="weights and compute; the stored log-probs are always float32"
    )

    @field_validator("device")
    @classmethod
    def _device_exists(cls, value: str) -> str:
        # Caught here, the error names the option; torch would fail deep inside `.to()`.
        if value.startswith("cuda") and not torch.cuda.is_available():
            raise ValueError(f"device={value!r}: no CUDA GPU is visible (use auto or cpu)")
        if value not in ("auto", "cpu") and not value.startswith("cuda"):
            raise ValueError(f"device={value!r}: use auto, cpu, cuda or cuda:N")
        return value


def _load_hf(spec: str, parsed: TeacherSpec, options: HFOptions) -> HFTeacher:
    dtype = getattr(torch, options.dtype)
    # Half-precision weights give other log-probs than float32 ones: name them apart, so
    # records of the two never share a teacher id (and a resume can't mix them). The
    # device is not named: float32 on a GPU agrees with the CPU to ~1e-5.
    suffix = "" if options.dtype == "float32" else f"+{options.dtype}"
    if parsed.is_embedded:
        from distill.store import sha256_file

        # The GGUF file's hash names the weights: it is what the user installed.
        return load_hf_teacher(
            embedded_teacher_dir(),
            model_id=EMBEDDED_MODEL_ID + suffix,
            revision=sha256_file(embedded_gguf_path()),
            dtype=dtype,
            device=options.device,
        )
    path = resolve_checkpoint(f"hf:{parsed.target}", "--teacher", hub=False)
    return load_hf_teacher(path, model_id=path.name + suffix, dtype=dtype, device=options.device)
