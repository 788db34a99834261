"""Teacher specs: `hf:PATH` (default: the embedded SmolLM2), `vllm:DIR`, `openai:MODEL@URL`.

`load_teacher` returns a `TeacherBackend` (see `distill.gen.backend`). Backend options come
as a dict (the CLI's repeated `--teacher-opt KEY=VALUE`) and are validated by the backend's
pydantic config, so a misspelt option is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distill.gen.backend import TeacherBackend
from distill.gen.embedded import EMBEDDED_MODEL_ID, embedded_gguf_path, embedded_teacher_dir
from distill.gen.hf_teacher import HFTeacher, load_hf_teacher

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


def load_teacher(
    spec: str,
    options: dict[str, Any] | None = None,
    *,
    top_k: int = 20,
    api_key_env: str | None = None,
) -> TeacherBackend:
    """The backend a `--teacher` spec names; `top_k` sizes engines that must know it."""
    parsed = parse_teacher_spec(spec)
    options = dict(options or {})
    if parsed.backend == "vllm":
        return _load_vllm(spec, parsed.target, options, top_k)
    if parsed.backend == "openai":
        from distill.gen.openai_teacher import OpenAIConfig, load_openai_teacher

        return load_openai_teacher(parsed.target, OpenAIConfig(**options), api_key_env)
    if options:
        raise ValueError(f"--teacher '{spec}': the hf backend takes no --teacher-opt options")
    return _load_hf(spec, parsed)


def _load_vllm(spec: str, target: str, options: dict[str, Any], top_k: int) -> TeacherBackend:
    try:
        import vllm  # noqa: F401

        from distill.gen.vllm_teacher import VLLMEngineConfig, load_vllm_teacher
    except ImportError as err:
        raise NotImplementedError(
            f"--teacher '{spec}': vLLM is not installed in this environment ({err}); run "
            "`bash scripts/setup_vllm.sh` and use `.venv-vllm/bin/distill gen ...`"
        ) from err
    path = Path(target).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--teacher '{spec}': {path} is not a checkpoint directory")
    return load_vllm_teacher(path, VLLMEngineConfig(**options), max_logprobs=top_k)


def _load_hf(spec: str, parsed: TeacherSpec) -> HFTeacher:
    if parsed.is_embedded:
        from distill.store import sha256_file

        # The GGUF file's hash names the weights: it is what the user installed.
        return load_hf_teacher(
            embedded_teacher_dir(),
            model_id=EMBEDDED_MODEL_ID,
            revision=sha256_file(embedded_gguf_path()),
        )
    path = Path(parsed.target).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(f"--teacher '{spec}': {path} is not a checkpoint directory")
    return load_hf_teacher(path)
