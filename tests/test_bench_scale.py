"""The scale benchmark's verdicts (bench/scale.py): each goal applied to the largest size
against the smallest; the runs themselves are the integrator's (minutes to hours)."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.scale import stage_command, verdicts


def test_each_goal_is_checked_at_the_largest_size_against_the_smallest() -> None:
    results = {
        "curate": {
            "1M": {"rss": 1.0e9, "per_s": 100.0},
            "4M": {"rss": 1.1e9, "per_s": 95.0},
            "16M": {"rss": 1.2e9, "per_s": 70.0},
        },
        "pack": {
            "1M": {"rss": 0.5e9, "per_s": 100.0},
            "4M": {"rss": 0.6e9, "per_s": 100.0},
            "16M": {"rss": 0.8e9, "per_s": 90.0},
        },
        "train": {
            "1M": {"rss": 2.5e9, "per_s": 0.2},
            "4M": {"rss": 2.6e9, "per_s": 0.2},
            "16M": {"rss": 3.1e9, "per_s": 0.2},
        },
    }
    lines = verdicts(results, [1.0, 4.0, 16.0])
    assert "curate    16M/1M: peak RSS x1.20  throughput x0.70" in lines
    assert "pack       4M/1M: peak RSS x1.20  throughput x1.00" in lines
    assert lines[-3:] == [
        "curate  RSS PASS, throughput FAIL, under 3 GB PASS",
        "pack    RSS FAIL, throughput PASS",
        "train   RSS PASS, throughput PASS, under 3 GB FAIL",
    ]


def test_each_stage_runs_its_own_command(tmp_path: Path) -> None:
    inputs = {"data": tmp_path / "data", "gen-in": tmp_path / "gen-in"}
    pack = stage_command("pack", inputs, tmp_path / "out", "plain", 10)
    assert pack[-6:] == [
        "pack",
        str(tmp_path / "data"),
        "--out",
        str(tmp_path / "out"),
        "--codec",
        "packed",
    ]
    gen_in = stage_command("gen-in", inputs, tmp_path / "out", "plain", 10)
    # 8 prompts a row, against the prepared prompts and output
    assert gen_in[-5:] == ["--prompts", "80", "--work", str(tmp_path / "gen-in"), "--measure-only"]
    with pytest.raises(ValueError, match="unknown stage 'score'"):
        stage_command("score", inputs, tmp_path / "out", "plain", 10)
