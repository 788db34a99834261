"""Token ids -> the strings the row browser shows, through the dataset's own tokenizer.

The report never downloads: it tries, offline, a tokenizer folder the user names, the
teacher's model id when it is a local folder, the embedded teacher's cached checkpoint,
and the models of the training runs in the report (a student shares the teacher's
tokenizer). A candidate is used only when its fingerprint (`tokenizer_hash`) equals the
one the dataset recorded, so ids are never decoded with another vocabulary. When none
loads, the browser shows ids (`#1234`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from distill.schemas import Manifest
from distill.tokenizer_info import tokenizer_hash

log = logging.getLogger(__name__)


def _candidates(manifest: Manifest, extra: Iterable[Path]) -> list[Path]:
    found = [Path(p) for p in extra]
    for teacher in manifest.teachers:
        found.append(Path(teacher.model_id).expanduser())
    try:
        from distill.teachers.embedded import EMBEDDED_MODEL_ID, cache_root

        names = {t.model_id for t in manifest.teachers}
        if EMBEDDED_MODEL_ID in names:  # its cached checkpoint only: never dequantise here
            found.extend(sorted((cache_root() / "models").glob(f"{EMBEDDED_MODEL_ID}-*")))
    except ImportError:  # pragma: no cover - part of distill, kept defensive
        pass
    return [p for p in found if (p / "tokenizer_config.json").is_file()]


def _expected_hash(manifest: Manifest) -> str | None:
    if manifest.tokenizer is not None:
        return manifest.tokenizer.tokenizer_hash
    return manifest.teachers[0].tokenizer_hash if manifest.teachers else None


def load_dataset_tokenizer(manifest: Manifest, extra: Iterable[Path] = ()) -> Any | None:
    """The first candidate tokenizer whose fingerprint matches the dataset's, or None."""
    expected = _expected_hash(manifest)
    candidates = _candidates(manifest, extra)
    if expected is None or not candidates:
        return None
    from transformers import AutoTokenizer  # only now: importing it takes seconds

    for path in candidates:
        try:
            tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        except (OSError, ValueError) as err:  # not a usable tokenizer folder: try the next
            log.debug("%s: no tokenizer (%s)", path, err)
            continue
        if tokenizer_hash(tokenizer) == expected:
            return tokenizer
    return None


def token_strings(tokenizer: Any | None, ids: Iterable[int]) -> dict[int, str]:
    """id -> its text (each id decoded alone, so a space it carries shows); `#id` without
    a tokenizer."""
    unique = sorted(set(ids))
    if tokenizer is None:
        return {i: f"#{i}" for i in unique}
    texts = tokenizer.batch_decode(
        [[i] for i in unique], skip_special_tokens=False, clean_up_tokenization_spaces=False
    )
    return dict(zip(unique, texts, strict=True))
