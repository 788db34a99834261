"""The reduced chaos run (bench/chaos.py): each stage SIGKILLed at random moments, rerun to
completion, and compared with an uninterrupted run: nothing lost, duplicated or unreadable;
curate and pack byte-identical, gen and score with the same record ids."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from bench.chaos import Settings, chaos_stage, prepare, run

pytestmark = pytest.mark.slow

KILLS = {"gen": 2, "score": 2, "curate": 2, "pack": 2}


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    # A random 2-layer teacher on the embedded tokenizer: gen in seconds, not minutes.
    s = Settings(tmp_path_factory.mktemp("chaos"), teacher="tiny", prompts=8, window=(0.3, 1.0))
    prepare(s)
    return s


@pytest.mark.parametrize("stage", list(KILLS))
def test_a_killed_stage_finishes_on_rerun_like_an_uninterrupted_run(
    stage: str, settings: Settings
) -> None:
    if stage != "gen" and not (settings.work / "gen" / "ref" / "manifest.json").is_file():
        run_gen_reference(settings)
    result = chaos_stage(stage, settings, KILLS[stage], random.Random(KILLS[stage]))
    assert result.problems == []
    assert result.kills == KILLS[stage] and result.reruns_ok == result.kills + result.finished_first
    assert (result.lost, result.duplicated, result.unreadable) == (0, 0, 0)
    assert result.equal == result.reruns_ok


def run_gen_reference(s: Settings) -> None:
    from bench.chaos import commands

    run(commands(s, Path(s.work / "gen" / "ref"))["gen"])
