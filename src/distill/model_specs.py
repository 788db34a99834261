"""One syntax for the models a command names, and one-line answers when one can't be had.

Every flag that names a model (`gen`/`score --teacher`, `train --student`, `train
--teacher`, `eval`'s models) reads the same specs:

- `hf:PATH` or a bare `PATH`: a local Hugging Face checkpoint directory;
- `hf:embedded` (also `hf:` alone): the embedded SmolLM2 teacher;
- `vllm:DIR`, `openai:MODEL@URL`: teachers only (gen, score), never a model distill loads
  with transformers to train or evaluate.

A Hub id (`HuggingFaceTB/SmolLM2-135M`) that is no local folder is the one thing that may need
the network. `train` and `eval` take it as transformers does (from the local cache, else the
Hub); without the network, and not cached, it is refused in one line that says what to do,
before anything is loaded. A teacher is always a local folder: gen records the hash of its
weights file, which it must read from disk.

A backend whose package is an optional extra is checked here too (`require_extra`), so a
missing package is named with the extra that installs it, not met as a traceback.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

EMBEDDED_NAMES = ("embedded", "smollm2", "")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class ModelSpecError(ValueError):
    """A model spec that can't be used, with what to do about it, on one line."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra."""


def require_extra(module: str, extra: str, what: str) -> None:
    """Raise `MissingExtraError` naming `pip install 'distill[extra]'` when `module` is absent."""
    if importlib.util.find_spec(module) is None:
        raise MissingExtraError(
            f"{what} needs the {module} package: pip install 'distill[{extra}]'"
        )


def looks_like_hub_id(target: str) -> bool:
    return bool(_HUB_ID.match(target)) and not target.startswith((".", "~"))


def _download_hint(flag: str, spec: str, target: str, why: str) -> str:
    return (
        f"{flag} '{spec}': {why}; download the checkpoint first (huggingface-cli download "
        f"{target} --local-dir DIR, where the network is) and pass {flag} hf:DIR"
    )


def _offline() -> bool:
    return any(
        os.environ.get(v, "") not in ("", "0") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def _hub_checkpoint(flag: str, spec: str, target: str) -> Path:
    """A Hub id transformers can load now (cached, or reachable), else `ModelSpecError`."""
    from huggingface_hub import model_info, try_to_load_from_cache

    cached = try_to_load_from_cache(target, "config.json")
    if isinstance(cached, str):
        return Path(target)
    if _offline():
        raise ModelSpecError(_download_hint(flag, spec, target, "a Hub id, offline and not cached"))
    try:
        model_info(target, timeout=10)
    except Exception as err:  # any failure to reach the Hub ends in the same advice
        why = f"the Hub can't be reached or has no such model ({type(err).__name__})"
        raise ModelSpecError(_download_hint(flag, spec, target, why)) from None
    return Path(target)


def resolve_checkpoint(spec: str | Path, flag: str, *, hub: bool = True) -> Path:
    """The checkpoint a spec names, as a local folder (or, with `hub`, a Hub id transformers
    can load now). Fails before anything is loaded, naming `flag`."""
    text = str(spec)
    backend, sep, target = text.partition(":")
    if not sep:
        backend, target = "hf", text
    if backend in ("vllm", "openai"):
        raise ModelSpecError(
            f"{flag} '{text}': a {backend}: teacher can only generate or score; here the "
            "model is loaded with transformers: pass hf:PATH"
        )
    if backend != "hf":
        raise ModelSpecError(f"{flag} '{text}': unknown backend '{backend}' (use hf:PATH)")
    if target in EMBEDDED_NAMES:
        from distill.teachers.embedded import embedded_teacher_dir

        return embedded_teacher_dir()
    path = Path(target).expanduser()
    if path.is_dir():
        return path
    if path.exists():
        raise ModelSpecError(f"{flag} '{text}': {path} is a file, not a checkpoint directory")
    if looks_like_hub_id(target):
        if hub:
            return _hub_checkpoint(flag, text, target)
        raise ModelSpecError(_download_hint(flag, text, target, "a Hub id, not a local folder"))
    raise ModelSpecError(f"{flag} '{text}': {path} is not a checkpoint directory")
