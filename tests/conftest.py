"""Shared fixtures. The real embedded teacher is loaded once per session (0.2 s after the
first-ever dequantisation, which takes ~25 s and is cached in $DISTILL_CACHE)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def embedded_teacher():
    from distill.teachers.specs import load_teacher

    return load_teacher("hf:embedded")
