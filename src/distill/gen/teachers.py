"""Teacher specs: `hf:PATH` (default: the embedded SmolLM2), later `vllm:...`, `openai:...`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

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


def load_teacher(spec: str) -> HFTeacher:
    parsed = parse_teacher_spec(spec)
    if parsed.backend != "hf":
        raise NotImplementedError(
            f"--teacher '{spec}': the {parsed.backend} backend is not available in this "
            "version; use hf:PATH or the default hf:embedded"
        )
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
